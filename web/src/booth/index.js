// The election's home page (/): name, plain-words explanation, voting period, the way to vote and to check.

import { periodBlock, startPage } from './lib/common.js';
import { phaseOf } from './lib/election.js';
import { language, localized, t } from './lib/i18n.js';
import { byId, fillEl, h } from './lib/ui.js';

const withLang = (path) => (language() === 'en' ? `${path}?lang=en` : path);

startPage('site.nav_home', (state) => {
  const open = phaseOf(state) === 'open';
  fillEl(byId('main'),
    h('h1', {}, localized(state.manifest.name)),
    h('p', { class: 'lead' }, t('index.lead')),
    periodBlock(state),
    h('section', { 'aria-labelledby': 'what-heading' },
      h('h2', { id: 'what-heading' }, t('index.what_heading')),
      h('ol', { class: 'steps' }, ['index.step1', 'index.step2', 'index.step3', 'index.step4', 'index.step5'].map((k) => h('li', {}, t(k))))),
    h('p', { class: 'note' }, t('index.revote')),
    h('div', { class: 'actions' },
      open ? h('a', { href: withLang('/vote'), class: 'button primary' }, t('index.vote')) : null,
      h('a', { href: withLang('/check'), class: 'button secondary' }, t('index.check'))));
});
