// What every booth page shows about the election: its name, the voting period and the phase; and the start-up
// of a page (chrome, election loading, errors). Used by index.js, vote.js, check.js.

import { loadElection, period, phaseOf } from './election.js';
import { formatTime, localized, plain, t } from './i18n.js';
import { byId, fillEl, h, initChrome, message, setTitle } from './ui.js';

/** The election's name in the header, and the page title. */
export function paintElection(state, pageKey) {
  fillEl(byId('election-name'), localized(state.manifest.name));
  setTitle(plain(pageKey), localized(state.manifest.name), plain('site.title'));
}

/** The voting period and the phase, as a small block. */
export function periodBlock(state) {
  const p = period(state);
  const phase = phaseOf(state);
  return h('section', { class: 'period', 'aria-labelledby': 'period-heading' },
    h('h2', { id: 'period-heading' }, t('period.heading')),
    h('p', {}, t('period.range', { opens: formatTime(p.opens), closes: formatTime(p.closes) })),
    h('p', { class: `phase phase-${phase}` }, h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: phase === 'open' ? '● ' : '○ ' }), t(`phase.${phase}`)));
}

/**
 * Start a page: chrome (language switch), then the election; `render(state)` draws the page and is called
 * again on every language switch. A failure to load is shown in the main region.
 */
export async function startPage(pageKey, render) {
  let state = null;
  const redraw = () => {
    if (state) {
      paintElection(state, pageKey);
      render(state, { redraw: true });
    }
  };
  initChrome(redraw);
  const main = byId('main');
  fillEl(main, h('p', { role: 'status' }, t('site.loading')));
  try {
    state = await loadElection();
  } catch (e) {
    fillEl(main, h('h1', {}, t('site.title')));
    message(main, 'error', t('site.error_load'));
    return;
  }
  paintElection(state, pageKey);
  render(state, { redraw: false });
}
