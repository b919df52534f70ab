// The contests as a form (docs/events.md, the manifest's contests): one_of_n and yes_no as a radio group,
// up_to_k as check boxes. An overvote is impossible: once `max` boxes are ticked the others are disabled
// (and the count says why); a blank contest (an undervote) is a choice of its own where min is 0, and the
// review states it in words. Choices are kept in memory only, as {contest_id: [selection ids]} in manifest
// order (what the protocol encrypts).

import { localized, plain, t } from './i18n.js';
import { fillEl, h } from './ui.js';

const BLANK = '';

export class Choices {
  constructor(manifest) {
    this.manifest = manifest;
    this.chosen = new Map(manifest.contests.map((c) => [c.id, new Set()]));
    this.touched = new Set(); // contests where the resident picked "leave blank" explicitly
  }

  /** {contest_id: [selection ids in manifest order]} */
  toProtocol() {
    const out = {};
    for (const c of this.manifest.contests) out[c.id] = c.selections.map((s) => s.id).filter((id) => this.chosen.get(c.id).has(id));
    return out;
  }

  /** Contests below their minimum, in manifest order. */
  tooFew() {
    return this.manifest.contests.filter((c) => this.chosen.get(c.id).size < c.min);
  }
}

function ruleText(c) {
  if (c.kind === 'yes_no') return t('choose.yes_no');
  if (c.kind === 'one_of_n') return c.min === 1 ? t('choose.one_of_n_required') : t('choose.one_of_n');
  return c.min > 0 ? t('choose.between', { min: c.min, max: c.max }) : t('choose.up_to_k', { max: c.max });
}

const fieldId = (contest) => `contest-${contest.id}`;

/** Render every contest into `form`; `changed()` is called after each change. */
export function renderContests(form, choices, changed = () => {}) {
  const fields = choices.manifest.contests.map((c, ci) => {
    const legendId = `${fieldId(c)}-legend`;
    const ruleId = `${fieldId(c)}-rule`;
    const fieldset = h('fieldset', { id: fieldId(c), class: 'contest', 'aria-describedby': ruleId },
      h('legend', { id: legendId }, h('span', { class: 'contest-number', text: `${ci + 1}. ` }), localized(c.name)),
      h('p', { id: ruleId, class: 'rule' }, ruleText(c)));
    const list = h('div', { class: 'options' });
    fieldset.append(list);
    if (c.kind === 'up_to_k') renderCheckboxes(c, list, fieldset, choices, changed);
    else renderRadios(c, list, choices, changed);
    return fieldset;
  });
  fillEl(form, ...fields);
}

function option(input, labelContent) {
  return h('div', { class: 'option' }, input, h('label', { for: input.id }, labelContent));
}

function renderRadios(c, list, choices, changed) {
  const set = choices.chosen.get(c.id);
  const make = (value, label) => {
    const input = h('input', { type: 'radio', name: fieldId(c), id: `${fieldId(c)}-${value || 'blank'}`, value });
    input.checked = value === BLANK ? set.size === 0 && choices.touched.has(c.id) : set.has(value);
    input.addEventListener('change', () => {
      set.clear();
      if (value === BLANK) choices.touched.add(c.id);
      else set.add(value);
      changed();
    });
    return option(input, label);
  };
  for (const s of c.selections) list.append(make(s.id, localized(s.name)));
  if (c.min === 0) list.append(make(BLANK, t('choose.blank_option')));
}

function renderCheckboxes(c, list, fieldset, choices, changed) {
  const set = choices.chosen.get(c.id);
  const countId = `${fieldId(c)}-count`;
  const count = h('p', { id: countId, class: 'count', 'aria-live': 'polite' });
  const inputs = c.selections.map((s) => {
    const input = h('input', { type: 'checkbox', name: fieldId(c), id: `${fieldId(c)}-${s.id}`, value: s.id, 'aria-describedby': countId });
    input.checked = set.has(s.id);
    input.addEventListener('change', () => {
      if (input.checked && set.size >= c.max) {
        input.checked = false; // cannot happen with the others disabled; kept as the rule's last guard
        return;
      }
      if (input.checked) set.add(s.id);
      else set.delete(s.id);
      update();
      changed();
    });
    list.append(option(input, localized(s.name)));
    return input;
  });
  function update() {
    const full = set.size >= c.max;
    for (const input of inputs) input.disabled = full && !input.checked;
    const parts = [t('choose.count', { count: set.size, max: c.max })];
    if (full) parts.push(' ', t('choose.full', { max: c.max }));
    fillEl(count, ...parts);
  }
  fieldset.append(count);
  update();
}

/** Focus the first control of a contest (from the review's "Change" buttons). */
export function focusContest(contestId) {
  const fieldset = document.getElementById(`contest-${contestId}`);
  const input = fieldset?.querySelector('input:not([disabled])');
  (input ?? fieldset)?.focus();
}

/** The review: each contest with the chosen names, or the blank statement; a "Change" button each. */
export function renderReview(container, choices, onChange) {
  const items = choices.manifest.contests.map((c) => {
    const set = choices.chosen.get(c.id);
    const picked = c.selections.filter((s) => set.has(s.id));
    const body = picked.length
      ? [h('ul', { class: 'picked' }, picked.map((s) => h('li', {}, localized(s.name)))),
        c.kind === 'up_to_k' ? h('p', { class: 'note' }, t('review.partial', { count: picked.length, max: c.max })) : null]
      : [h('p', { class: 'blank' }, h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: '○ ' }), t('review.blank'))];
    return h('div', { class: 'review-item' },
      h('dt', {}, localized(c.name)),
      h('dd', {}, ...body,
        h('button', { type: 'button', class: 'secondary', 'aria-label': plain('review.change', { contest: localized(c.name) }), onclick: () => onChange(c.id) },
          t('review.change', { contest: localized(c.name) }))));
  });
  fillEl(container, h('dl', { class: 'review' }, items));
}

/** The names of chosen selections, per contest (for showing an opened ballot). */
export function describe(manifest, opened) {
  return manifest.contests.map((c) => {
    const ids = opened[c.id] ?? [];
    const names = c.selections.filter((s) => ids.includes(s.id)).map((s) => localized(s.name));
    return h('div', { class: 'review-item' }, h('dt', {}, localized(c.name)),
      h('dd', {}, names.length ? h('ul', { class: 'picked' }, names.map((n) => h('li', {}, n))) : h('p', { class: 'blank' }, t('contest.blank'))));
  });
}
