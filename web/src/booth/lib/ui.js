// DOM helpers shared by the booth's pages: element building (no innerHTML: texts go in as text or as the
// nodes of i18n.t), step switching with focus management, the live region, the header's language switch.
// No inline style or script anywhere: the pages run under a strict Content-Security-Policy.

import { initialLanguage, language, plain, setLanguage, t } from './i18n.js';

/** h('p', {class: 'x', id: 'y'}, child, ...): an element; a child is a string, a node or null. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  nameWithoutReadings(el);
  return el;
}

const CONTROLS = new Set(['BUTTON', 'A']);
const NAMED = new Set(['H1', 'H2', 'H3', 'LABEL', 'LEGEND', 'DT']);

/**
 * Readings are for instructions. A control (button, link) shows its words without them, so that its visible
 * label and its accessible name are the same words (WCAG 2.5.3); a heading or label keeps them on screen and
 * gets the words alone as its accessible name, which the name computation would otherwise break apart at
 * every <ruby> ("投票 を 始 める").
 */
export function nameWithoutReadings(el) {
  if (CONTROLS.has(el.tagName)) {
    for (const ruby of el.querySelectorAll('ruby')) ruby.replaceWith(ruby.firstChild.textContent);
    el.normalize();
    return;
  }
  if (!NAMED.has(el.tagName) || el.hasAttribute('aria-label') || !el.querySelector('ruby')) return;
  const copy = el.cloneNode(true);
  for (const x of copy.querySelectorAll('rt, rp')) x.remove();
  el.setAttribute('aria-label', copy.textContent.replace(/\s+/g, ' ').trim());
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el;
}

/** Replace an element's content. */
export function fillEl(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  if (el.dataset.rubyName !== undefined || !el.hasAttribute('aria-label')) {
    el.removeAttribute('aria-label');
    el.dataset.rubyName = '';
    nameWithoutReadings(el);
  }
  return el;
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = byId('announce');
  region.textContent = '';
  // a fresh text node after a tick, so that the same message twice is announced twice
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/**
 * Show one step (a <section data-step>) and hide the others; move the focus to the step's heading
 * (tabindex -1) so that keyboard and screen-reader users continue from the new content.
 */
export function showStep(name, { focus = true } = {}) {
  for (const section of document.querySelectorAll('[data-step]')) section.hidden = section.dataset.step !== name;
  const section = document.querySelector(`[data-step="${name}"]`);
  if (!section) throw new Error(`no step ${name}`);
  const heading = section.querySelector('h2, h1');
  if (focus && heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
  return section;
}

/** A status message (role=status) or an error (role=alert) inside `container`. */
export function message(container, kind, ...content) {
  const el = h('p', { class: `msg msg-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: kind === 'error' ? '⚠ ' : kind === 'ok' ? '✓ ' : 'ℹ ' }),
    ...content);
  container.append(el);
  return el;
}

/**
 * Set up the page chrome: language from the address, the language switch (re-renders via `render`), the
 * skip link and the navigation texts. `render()` redraws everything that depends on the language.
 */
export function initChrome(render) {
  setLanguage(initialLanguage());
  const button = byId('lang-switch');
  button.addEventListener('click', () => {
    setLanguage(language() === 'ja' ? 'en' : 'ja');
    paintChrome();
    render();
    button.focus();
  });
  paintChrome();
}

/** Paint the chrome's texts in the current language (initChrome does it at start and on each switch). */
export function paintChrome() {
  const button = byId('lang-switch');
  fillEl(button, h('span', { lang: language() === 'ja' ? 'en' : 'ja', text: plain('lang.switch') }));
  button.setAttribute('aria-label', plain('lang.switch_label'));
  fillEl(byId('skip-link'), t('site.skip'));
  for (const el of document.querySelectorAll('[data-text]')) fillEl(el, t(el.dataset.text));
  for (const a of document.querySelectorAll('a[data-keep-lang]')) {
    const url = new URL(a.getAttribute('href'), location.href);
    if (language() === 'en') url.searchParams.set('lang', 'en');
    else url.searchParams.delete('lang');
    a.setAttribute('href', url.pathname + url.search);
  }
}

/** The page's <title>: the page's name and the election's name. */
export function setTitle(...parts) {
  document.title = parts.filter(Boolean).join(' — ');
}

/** The tracking code, big, in groups of four, with its label (the booth's and the kiosk's receipts). */
export function trackingCodeBlock(code, labelKey) {
  return h('div', { class: 'tracking' }, h('p', { class: 'tracking-label', id: 'tracking-label' }, t(labelKey)),
    h('p', { class: 'tracking-code', 'aria-labelledby': 'tracking-label' }, ...code.split('-').map((g) => h('span', { class: 'group', text: g }))));
}
