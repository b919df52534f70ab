// The kiosk service's local API (docs/kiosk.md, "The kiosk device service"): same origin, JSON, errors
// {"error": {"code", "message", "message_ja", "message_en", …}} as ApiError (its `details` carry e.g.
// `tries_left`). The election data for the ballot come through the service's read-only pass-through of
// /api/v1/election… (web/src/booth/lib/api.js, unchanged).

import { request } from '../../booth/lib/api.js';

const BASE = '/kiosk/api';

export const state = () => request('GET', `${BASE}/state`);
export const open = (pin) => request('POST', `${BASE}/open`, { pin });
export const close = (pin) => request('POST', `${BASE}/close`, { pin });
export const unlock = (pin) => request('POST', `${BASE}/unlock`, { pin });
export const lockAsVoter = (voterSession) => request('POST', `${BASE}/lock`, { voter_session: voterSession });
export const lockAsPollWorker = (pin) => request('POST', `${BASE}/lock`, { pin });
export const card = (voterSession) => request('POST', `${BASE}/card`, { voter_session: voterSession });
export const cast = (voterSession, ballot, cardPin) => request('POST', `${BASE}/cast`, { voter_session: voterSession, ballot, card_pin: cardPin });
export const recheckAsVoter = (voterSession) => request('POST', `${BASE}/recheck`, { voter_session: voterSession });
export const recheckAsPollWorker = (pin) => request('POST', `${BASE}/recheck`, { pin });
// the voter is still there (a touch on the screen): the service's idle time starts again. Needs the service's
// POST /kiosk/api/touch (docs/kiosk.md, "The kiosk screen"); a service without it answers 404, ignored here
export const touch = (voterSession) => request('POST', `${BASE}/touch`, { voter_session: voterSession });
