// The election server's HTTP API as the booth uses it (docs/api.md, docs/voting.md). Same origin only: the
// Content-Security-Policy allows no other. Every error answer is {"error": {"code", "message"}}; it becomes
// an ApiError with that code (and the whole error object as `details`: e.g. `tries_left`, `message_ja`). A
// request that never got an answer (network lost) is a NetworkError, so that the caller can tell "refused"
// from "do not know". `request` is the same for any same-origin JSON path (the kiosk's local API).

const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class NetworkError extends Error {}

/** A same-origin JSON request to `url`: the answer's JSON, else ApiError (refused) or NetworkError (no answer). */
export async function request(method, url, body = undefined) {
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: body === undefined ? { Accept: 'application/json' } : { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new NetworkError(e.message);
  }
  let data;
  try {
    data = await response.json();
  } catch (e) {
    if (!response.ok) throw new ApiError(response.status, 'response.malformed', `HTTP ${response.status}`);
    throw new ApiError(response.status, 'response.malformed', 'the server answered something that is not JSON');
  }
  if (!response.ok) {
    const err = data && typeof data === 'object' && data.error ? data.error : {};
    throw new ApiError(response.status, String(err.code ?? 'http.error'), String(err.message ?? `HTTP ${response.status}`), err);
  }
  return data;
}

const call = (method, path, body = undefined) => request(method, API + path, body);

// -- election ----------------------------------------------------------------------------------------------
export const getElection = () => call('GET', '/election');
export const getManifest = () => call('GET', '/election/manifest');
export const getJointKey = () => call('GET', '/election/joint-key');

// -- ballots -----------------------------------------------------------------------------------------------
export const castBallot = (ballot, auth) => call('POST', '/voter/ballots', { ballot, auth });
export const spoilBallot = (ballot, revealed) => call('POST', '/voter/spoil', { ballot, revealed });
export const lookupBallot = (trackingCode) => call('GET', `/voter/ballots/${encodeURIComponent(trackingCode)}`);

// -- digital ID (OpenID Connect) ---------------------------------------------------------------------------
// No redirect_uri: the server sends the provider its registered callback (TVOTE_OIDC_REDIRECT_URI), which is
// this booth's /oidc/callback; any other value would be refused (oidc.redirect_uri).
export const oidcStart = (ballotHash) => call('POST', '/voter/oidc/start', { ballot_hash: ballotHash });

// -- My Number card through the Digital Authentication App (docs/voting.md §3a) ------------------------------
// a one-time challenge: {challenge, expires_at}
export const jpkiChallenge = () => call('POST', '/voter/challenge');
// a signing transaction for exactly this ballot and challenge: {transaction, app_url, expires_at}
export const jpkiAppStart = (ballotHash, challenge) => call('POST', '/voter/jpki-app/start', { ballot_hash: ballotHash, challenge });
// {transaction, status}: pending | approved | refused | expired | used
export const jpkiAppStatus = (transaction) => call('GET', `/voter/jpki-app/${encodeURIComponent(transaction)}`);

// -- ledger ------------------------------------------------------------------------------------------------
export const latestCheckpoint = () => call('GET', '/ledger/checkpoint');
export const checkpointAt = (size) => call('GET', `/ledger/checkpoint/${size}`);
export const witnessedCheckpoint = () => call('GET', '/ledger/checkpoint/witnessed');
export const ledgerWitnesses = () => call('GET', '/ledger/witnesses');
export const entries = (start, stop) => call('GET', `/ledger/entries?start=${start}&stop=${stop}`);
export const consistencyProof = (oldSize, newSize) =>
  call('GET', `/ledger/proof/consistency?old_size=${oldSize}&new_size=${newSize}`);

// -- Check my ballot and the booth's transparency (docs/api.md: /voter/check, /election/booth) -------------------
/**
 * Check my ballot's lookup: the same fresh receipt as /voter/ballots/{code}, and the server counts the check
 * (a count only). A server without that route answers the plain receipt route instead (uncounted).
 */
export async function checkBallot(trackingCode) {
  try {
    return await call('GET', `/voter/check/${encodeURIComponent(trackingCode)}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && e.code !== 'ballot.not_found') return lookupBallot(trackingCode);
    throw e;
  }
}

// {published: {digest, assets, ledger_index} | null, served: {digest, assets}, matches, checked_ballots}
export const boothInfo = () => call('GET', '/election/booth');

/** What this browser is served at each listed address: [{path, sha256, bytes}] in the list's order. */
export async function servedAssets(listed) {
  const out = [];
  for (const { path } of listed) {
    const response = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) throw new ApiError(response.status, 'http.error', `${path}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    out.push({ path, sha256: [...digest].map((b) => b.toString(16).padStart(2, '0')).join(''), bytes: bytes.length });
  }
  return out;
}
