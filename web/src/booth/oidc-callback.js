// The digital-ID provider's redirect back (/vote/oidc-callback?code=…&state=…): the state must be the one this
// tab started for its pending encrypted ballot (vote.js); code and state are put beside it and the booth
// resumes at the face check. The address (with the one-time code) is replaced, not kept in the history.

import { initChrome, byId, fillEl, h, message, setTitle } from './lib/ui.js';
import { language, plain, t } from './lib/i18n.js';

const PENDING_KEY = 'tvote.booth.pending';

function render() {
  const q = new URLSearchParams(location.search);
  const main = byId('main');
  setTitle(plain('oidc.returning'), plain('site.title'));
  const raw = sessionStorage.getItem(PENDING_KEY);
  let pending = null;
  try {
    pending = raw ? JSON.parse(raw) : null;
  } catch {
    pending = null;
  }
  const back = h('p', {}, h('a', { href: language() === 'en' ? '/vote?lang=en' : '/vote', class: 'button primary' }, t('oidc.back_to_booth')));
  fillEl(main, h('h1', {}, t('oidc.returning')));
  if (q.get('error')) {
    message(main, 'error', t('oidc.provider_error', { error: q.get('error') }));
    main.append(back);
    return;
  }
  const code = q.get('code');
  const state = q.get('state');
  if (!pending || !code || !state || state !== pending.state) {
    message(main, 'error', t('oidc.bad_return'));
    main.append(back);
    return;
  }
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ ...pending, code }));
  message(main, 'info', t('oidc.returning'));
  const lang = pending.lang === 'en' || language() === 'en' ? '&lang=en' : '';
  location.replace(`/vote?resume=oidc${lang}`);
}

initChrome(render);
byId('election-name').textContent = '';
render();
