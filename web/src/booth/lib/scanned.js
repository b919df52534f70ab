// What a QR code scanned on Check my ballot may hold, decided before anything is fetched. No DOM and no
// network here (node:test runs it: web/test/scanned.test.mjs). Three things are accepted:
//   - a tracking code ("ABCD-EFGH-JKMN-PQRS", as readTrackingCode reads one typed);
//   - a ballot hash, 64 hexadecimal digits (§10): the page looks it up by its tracking code and then requires
//     the receipt's ballot_hash to be this one;
//   - the address of THIS booth's Check my ballot page, as the booth's own QR codes hold it (the receipt's
//     `<origin>/check?code=…`, the Benaloh second device's `<origin>/check?spoiled=…`; `lang` may be there
//     too): the same origin as the page (scheme, host and port), the path /check, exactly one of code and
//     spoiled, no other parameter.
// Anything else is refused: an address of another origin as 'foreign' (never opened, never fetched: the
// page only says which site it names), every other text as 'junk'.

/** At most this many characters are looked at (the booth's own QR codes hold fewer than 100). */
export const MAX_SCANNED = 1024;

const HASH = /^[0-9a-f]{64}$/i;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;
const PARAMS = new Set(['code', 'spoiled', 'lang']);

/**
 * `text`: the QR code's text; `origin`: this page's origin (location.origin); `readCode(text)`: the
 * tracking code in its shown form, or null (the booth's engine.readTrackingCode).
 * Returns {kind: 'code', code, expect: 'auto' | 'spoiled'} | {kind: 'hash', hash} (lowercase) |
 * {kind: 'foreign', site} (the other origin's host, or its scheme when it has none) | {kind: 'junk'}.
 */
export function readScanned(text, origin, readCode) {
  if (typeof text !== 'string' || text.length > MAX_SCANNED) return { kind: 'junk' };
  const s = text.trim();
  if (HASH.test(s)) return { kind: 'hash', hash: s.toLowerCase() };
  if (!SCHEME.test(s)) {
    const code = /^[0-9A-Za-z -]{16,19}$/.test(s) ? readCode(s) : null;
    return code ? { kind: 'code', code, expect: 'auto' } : { kind: 'junk' };
  }
  let url;
  try {
    url = new URL(s);
  } catch {
    return { kind: 'junk' };
  }
  if (url.origin !== origin || url.origin === 'null') return { kind: 'foreign', site: (url.host || url.protocol.replace(/:$/, '')).slice(0, 100) };
  if (url.pathname !== '/check' || url.username || url.password) return { kind: 'junk' };
  const names = [...url.searchParams.keys()];
  if (names.some((n) => !PARAMS.has(n)) || new Set(names).size !== names.length) return { kind: 'junk' };
  const given = ['code', 'spoiled'].filter((n) => url.searchParams.has(n));
  if (given.length !== 1) return { kind: 'junk' };
  const code = readCode(url.searchParams.get(given[0]));
  return code ? { kind: 'code', code, expect: given[0] === 'spoiled' ? 'spoiled' : 'auto' } : { kind: 'junk' };
}
