// The election as the booth shows it: /election (phase, period in force) and /election/manifest (names in
// Japanese and English, contests). Display needs no cryptography; before encrypting, `verifiedContext`
// re-derives the base hash from the manifest in the protocol library (engine.js) and refuses a mismatch.

import * as api from './api.js';

let loaded = null;

export async function loadElection() {
  if (loaded) return loaded;
  const [election, published] = await Promise.all([api.getElection(), api.getManifest()]);
  if (!published || typeof published.manifest !== 'object' || !Array.isArray(published.manifest.contests))
    throw new Error('the server did not send a manifest');
  loaded = { election, manifest: published.manifest, baseHash: published.base_hash };
  return loaded;
}

/** The protocol's election context, with the base hash and the joint key checked (engine.js). */
export async function verifiedContext() {
  const { election, manifest, baseHash } = await loadElection();
  if (election.base_hash !== baseHash) throw new (await import('../engine.js')).ElectionMismatch('base hashes differ');
  const jk = await api.getJointKey();
  if (!jk || jk.joint_key !== election.joint_key) throw new Error('the joint key differs between /election and /election/joint-key');
  const engine = await import('../engine.js');
  return engine.electionContext(manifest, baseHash, jk.joint_key);
}

/** The end in force (a published extension moves it) and the start. */
export function period(state) {
  const { election, manifest } = state;
  return { opens: manifest.voting_period.opens, closes: election.voting_closes ?? manifest.voting_period.closes };
}

/** 'setup' | 'open' | 'closed' from the server's phase. */
export function phaseOf(state) {
  const p = String(state.election.phase ?? '');
  if (p === 'voting') return 'open';
  if (['closed', 'tallied', 'decrypted', 'declared'].includes(p)) return 'closed';
  return 'setup';
}
