// The booth's texts in Japanese (default) and English: web/src/booth/i18n/{ja,en}.json, bundled with the code.
// A text may carry readings for its kanji as [[漢字|かんじ]] (rendered as <ruby>) and placeholders {name}.
// `t(key, vars)` gives a DocumentFragment (ruby included; the readings hidden from the accessibility tree,
// so that names stay the words themselves) for the page; `plain(key, vars)` the same text
// without readings, for attributes (aria-label, title) where markup cannot go.

import ja from '../i18n/ja.json' with { type: 'json' };
import en from '../i18n/en.json' with { type: 'json' };

export const LANGUAGES = ['ja', 'en'];
const TEXTS = { ja: { ...ja }, en: { ...en } };
const RUBY = /\[\[([^|\]]+)\|([^\]]+)\]\]/g;

let current = 'ja';

/**
 * Add a page's own texts ({ja: {key: text}, en: {…}}; the kiosk's web/src/kiosk/i18n/), so that a page that
 * is not the residents' booth does not make every booth page carry its texts. A key the booth has is refused.
 */
export function addTexts(texts) {
  for (const lang of LANGUAGES) {
    for (const [key, text] of Object.entries(texts[lang] ?? {})) {
      if (key in TEXTS[lang]) throw new Error(`text ${key} is already defined`);
      TEXTS[lang][key] = text;
    }
  }
}

/** The language asked for in the address (?lang=en), else Japanese. */
export function initialLanguage() {
  const asked = new URLSearchParams(location.search).get('lang');
  return LANGUAGES.includes(asked) ? asked : 'ja';
}

export function language() {
  return current;
}

export function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) throw new Error(`unknown language ${lang}`);
  current = lang;
  document.documentElement.lang = lang;
  const url = new URL(location.href);
  if (lang === 'ja') url.searchParams.delete('lang');
  else url.searchParams.set('lang', lang);
  history.replaceState(history.state, '', url);
}

function raw(key) {
  const text = TEXTS[current][key];
  if (text === undefined) throw new Error(`no text ${key} in ${current}`);
  return text;
}

function fill(text, vars) {
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** The text without readings: attributes, document.title, the screen-reader announcements. */
export function plain(key, vars = {}) {
  return fill(raw(key).replace(RUBY, '$1'), vars);
}

/** The text as nodes: each [[base|reading]] becomes <ruby>base<rp>(</rp><rt>reading</rt><rp>)</rp></ruby>. */
export function t(key, vars = {}) {
  const text = raw(key);
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(RUBY)) {
    if (m.index > last) out.append(fill(text.slice(last, m.index), vars));
    const ruby = document.createElement('ruby');
    const rt = document.createElement('rt');
    rt.textContent = m[2];
    // readings are for the eye; screen readers read the kanji themselves (and would say both otherwise)
    rt.setAttribute('aria-hidden', 'true');
    const open = document.createElement('rp');
    open.textContent = '(';
    const close = document.createElement('rp');
    close.textContent = ')';
    open.setAttribute('aria-hidden', 'true');
    close.setAttribute('aria-hidden', 'true');
    ruby.append(m[1], open, rt, close);
    out.append(ruby);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.append(fill(text.slice(last), vars));
  return out;
}

/** A name from the manifest ({ja, en}) in the current language. */
export function localized(name) {
  return name[current] ?? name.ja;
}

/** A time of the manifest (RFC 3339, UTC) as the resident reads it, in Japan time. */
export function formatTime(iso) {
  const locale = current === 'ja' ? 'ja-JP' : 'en-GB';
  return new Intl.DateTimeFormat(locale, {
    dateStyle: 'full',
    timeStyle: 'short',
    timeZone: 'Asia/Tokyo',
  }).format(new Date(iso));
}
