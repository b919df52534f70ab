// The receipt step: tracking code, ledger index, a QR code that opens Check my ballot, the inclusion proof
// verified in this browser against a checkpoint cosigned by the manifest's witnesses (ledger.js), saving as a
// file or image, and only the receipt kept in this browser (localStorage).

import { localized, plain, t } from './i18n.js';
import { ReceiptCheckFailed, completeReceipt, verifyReceipt } from './ledger.js';
import { canvasPng, download, qrCanvas } from './qr.js';
import { fillEl, h, message } from './ui.js';

const STORE_KEY = 'tvote.booth.receipts';
const STEPS = ['signature', 'inclusion', 'entry', 'consistency', 'witnessed'];

function keep(electionId, receipt) {
  try {
    const all = JSON.parse(localStorage.getItem(STORE_KEY) ?? '[]');
    if (!all.some((r) => r.receipt.entry_hash === receipt.entry_hash)) all.push({ election_id: electionId, receipt });
    localStorage.setItem(STORE_KEY, JSON.stringify(all));
  } catch {
    // storage refused (private mode): the receipt can still be saved as a file
  }
}

export function receiptStep(s, { section, button, trackingCodeBlock, voteAgain }) {
  const r = s.receipt;
  const manifest = s.election.manifest;
  s.verification ??= { status: 'verifying', passed: [] };
  const v = s.verification;
  const checkUrl = `${location.origin}/check?code=${r.tracking_code}`;
  const qr = h('div', { class: 'qr-box' });
  let canvas = null;
  qrCanvas(checkUrl, plain('receipt.qr_label', { code: r.tracking_code })).then((c) => {
    canvas = c;
    if (c) qr.append(c);
  });

  const status = h('div', { class: 'verification' });
  const paint = () => {
    fillEl(status);
    if (v.status === 'verifying') message(status, 'info', t('receipt.verifying'));
    if (v.status === 'pending') message(status, 'info', t('receipt.pending'));
    status.append(h('ul', { class: 'checks' }, STEPS.filter((x) => v.passed.includes(x)).map((x) =>
      h('li', {}, h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: '✓ ' }), t(`verify.step_${x}`)))));
    if (v.status === 'verified') message(status, 'ok', t('receipt.verified', v.witnessed));
    if (v.status === 'verified-log') message(status, 'ok', t('receipt.verified_log'));
    if (v.status === 'unwitnessed') message(status, 'info', t('receipt.verified_unwitnessed'));
    if (v.status === 'failed') message(status, 'error', t('receipt.failed', { check: v.check, message: v.message }));
  };
  paint();
  if (!v.started) {
    v.started = true;
    keep(manifest.election_id, r);
    (async () => {
      try {
        const engine = await import('../engine.js');
        const full = await completeReceipt(r, { onPending: () => ((v.status = 'pending'), paint()) });
        s.receipt = full;
        v.status = 'verifying';
        paint();
        const res = await verifyReceipt(engine, manifest, full, { steps: (x) => (v.passed.push(x), paint()) });
        keep(manifest.election_id, full);
        Object.assign(v, { status: res.witnessed ? 'verified' : res.witnessesNamed ? 'unwitnessed' : 'verified-log', witnessed: res.witnessed ?? {} });
      } catch (e) {
        const check = e instanceof ReceiptCheckFailed ? e.check : 'error';
        Object.assign(v, check === 'checkpoint-unwitnessed' ? { status: 'unwitnessed' } : { status: 'failed', check, message: e.message });
      }
      paint();
    })();
  }

  const saveFile = () => {
    const body = JSON.stringify({ format: 'tvote-receipt/1', election_id: manifest.election_id, election: localized(manifest.name), receipt: s.receipt }, null, 2);
    download(new Blob([body], { type: 'application/json' }), `tvote-receipt-${r.tracking_code}.json`);
  };
  const saveImage = async () => canvas && download(await canvasPng(canvas), `tvote-receipt-${r.tracking_code}.png`);

  return section('receipt.heading',
    h('p', { class: 'msg msg-ok', role: 'status' }, h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: '✓ ' }), t('receipt.cast')),
    trackingCodeBlock(r.tracking_code, 'receipt.tracking'),
    h('dl', { class: 'facts' }, h('dt', {}, t('receipt.index')), h('dd', { text: String(r.leaf_index) })),
    qr, h('p', {}, h('a', { href: checkUrl, class: 'url' }, checkUrl)),
    status,
    h('div', { class: 'actions' }, button('receipt.save_file', saveFile, 'secondary'), button('receipt.save_image', saveImage, 'secondary')),
    h('p', { class: 'note' }, t('receipt.stored')),
    h('p', { class: 'note' }, t('receipt.revote')),
    h('div', { class: 'actions' }, button('receipt.vote_again', () => {
      s.verification = null;
      voteAgain();
    }, 'secondary'), h('a', { href: `/check?code=${r.tracking_code}`, class: 'button secondary' }, t('receipt.check'))));
}
