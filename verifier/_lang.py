"""The human report's texts, in English (the default) and Japanese (``tvote-verify --lang ja``): one table.

:data:`CHECK_TITLES_JA` holds the Japanese title of every check (by its stable id; the English title is
``verifier._checks.Check.title``); :data:`TEXTS` holds every other phrase the human report prints, by key,
as ``(English, Japanese)``, with ``str.format`` fields. The JSON report (``--json``) is never translated: it
carries the English texts and the stable ids.

Failure messages of the individual checks are technical (they name fields, hashes and entries) and are
printed in English in both languages, after a translated frame (check number, title, ledger entry).
"""

from __future__ import annotations

import enum
import re
from typing import Final

from ._checks import Check

__all__ = ["CHECK_TITLES_JA", "LANGS", "TEXTS", "Lang", "check_title", "text", "translate"]


class Lang(enum.StrEnum):
    """``tvote-verify --lang``."""

    en = "en"
    ja = "ja"


LANGS: Final[tuple[str, ...]] = tuple(lang.value for lang in Lang)

CHECK_TITLES_JA: Final[dict[str, str]] = {
    "record.format": "記録の形式と版",
    "ledger.chain": "ハッシュチェーン",
    "ledger.tree": "各チェックポイントのマークル根",
    "ledger.checkpoint-signature": "チェックポイントの署名",
    "ledger.cosignatures": "立会人の連署と定足数",
    "ledger.consistency": "チェックポイント間の整合性（追記のみ）",
    "election.manifest": "選挙定義（マニフェスト）とベースハッシュ",
    "ledger.phases": "手続きの順序",
    "trustee.commitments": "管理者（トラスティ）のコミットメントと証明",
    "trustee.complaints": "異議、応答と失格",
    "election.joint-key": "選挙の共同公開鍵",
    "roll.commitment": "選挙人名簿のコミットメント",
    "ballot.proofs": "投票の形式と証明",
    "ballot.binding": "投票とこの選挙との結び付き",
    "ballot.unique": "投票・乱数・暗号文の重複なし",
    "ballot.spoiled": "検査用に開封した投票",
    "tally.counting-rule": "集計規則（再投票と投票所端末の優先）",
    "tally.aggregate": "暗号化された集計",
    "tally.partial-decryption": "部分復号",
    "tally.combination": "ラグランジュ補間による結合",
    "tally.result": "公表された結果",
    "result.pdf": "結果宣言書（PDF）",
    "record.privacy": "個人情報を含まないこと",
    "since.extends": "以前の記録への追記のみ（--since）",
    "receipt.inclusion": "受領証（--receipt）",
    "voting.period": "投票期間とその変更",
    "record.pins": "公式の固定値（--pins）",
    "trustee.enrolment": "管理者（トラスティ）の登録",
    "booth.published": "住民向け投票画面（ブース）",
    "kiosk.enrolment": "投票所端末の登録と開閉",
    "kiosk.ballots": "投票所端末の投票",
}

#: key -> (English, Japanese)
TEXTS: Final[dict[str, tuple[str, str]]] = {
    # --- why a check could not run (Report.not_checked): stored in English, shown translated
    "reason.no-trust-root": (
        "no commission root certificate was given, so the PDF's signature could not be checked (give it "
        "with --trust-root FILE, or give --pins when the commission root is pinned)",
        "選挙管理委員会のルート証明書が与えられていないため、PDF の署名を検証できませんでした"
        "（--trust-root ファイルで与えるか、ルートが固定されている場合は --pins を指定してください）",
    ),
    "reason.no-pinned-root": (
        "the pinned commission root certificate is neither in the PDF's signature nor given, so "
        "the PDF's signature could not be checked (give it with --trust-root FILE)",
        "固定された選挙管理委員会のルート証明書が PDF の署名にも与えられたファイルにもないため、"
        "PDF の署名を検証できませんでした（--trust-root ファイルで与えてください）",
    ),
    "reason.no-pdf": (
        "there is no result.pdf in or beside the record (give it with --pdf FILE)",
        "記録の中にもその隣にも result.pdf がありません（--pdf ファイルで与えてください）",
    ),
    # --- notes (stored in English; shown translated)
    "note.not-official": (
        "checked without pins (--pins): not an official verification; the record was checked against itself "
        "only, so a wholly fabricated record with keys of its own would also pass",
        "固定値（--pins）なしで検証しました。公式の検証ではありません。記録はそれ自体とだけ照合されたため、"
        "独自の鍵で一から作られた偽の記録も合格しえます",
    ),
    "note.receipt-pending": (
        "the receipt was pending (no checkpoint): checked against the record only",
        "受領証は確定前（チェックポイントなし）でした: 記録とだけ照合しました",
    ),
    "note.not-applicable": ("V{step} {check}: not applicable ({why})", "V{step} {title}: 該当なし（{why}）"),
    "why.no-enrolment-keys": (
        "the manifest pins no trustee enrolment keys",
        "選挙定義が管理者（トラスティ）の登録鍵を固定していません",
    ),
    "why.no-kiosk": (
        "the record has no kiosk entry and no kiosk ballot",
        "記録に投票所端末の項目も投票所端末の票もありません",
    ),
    "why.no-booth-yet": (
        "voting has not opened and no booth is published yet",
        "投票はまだ始まっておらず、投票画面（ブース）もまだ公開されていません",
    ),
    "why.no-voting-opened": ("the record has no voting.opened yet", "記録にまだ voting.opened がありません"),
    # --- the report
    "summary": (
        "ballots cast {cast}, counted {counted}, superseded by re-votes {superseded}, overridden by kiosk "
        "ballots {overridden}, spoiled {spoiled}",
        "投じられた票 {cast}、集計された票 {counted}、再投票で置き換えられた票 {superseded}、"
        "投票所端末の票で置き換えられた票 {overridden}、検査用に開封された票 {spoiled}",
    ),
    "result": ("Result", "結果"),
    "col.contest": ("contest", "選挙・設問"),
    "col.selection": ("selection", "選択肢"),
    "col.name": ("name", "名称"),
    "col.votes": ("votes", "得票数"),
    "booth": (
        "booth published at entry {entry}: digest {digest} (compare it with GET /api/v1/election/booth)",
        "投票画面（ブース）はエントリ {entry} で公開: ダイジェスト {digest}"
        "（GET /api/v1/election/booth と比べてください）",
    ),
    "checks": ("Checks", "検証項目"),
    "col.check": ("check", "項目"),
    "col.status": ("status", "結果"),
    "status.pass": ("pass", "合格"),
    "status.fail": ("fail", "不合格"),
    "status.n/a": ("n/a", "該当なし"),
    "status.pending": ("not run", "未実施"),
    "status.not-checked": ("not checked", "未検証"),
    "fail": ("FAIL", "不合格"),
    "failure": (
        "check V{step} '{check}' failed{where}: {message}",
        "検証 V{step}「{title}」不合格{where}: {message}",
    ),
    "failure.entry": (" (ledger entry {entry})", "（台帳エントリ {entry}）"),
    "suppressed": (
        "V{step}: {n} further failures not listed",
        "V{step}: ほかに {n} 件の不合格（一覧は省略）",
    ),
    "note": ("note", "注記"),
    "not-checked": ("NOT CHECKED", "未検証"),
    "not-checked.line": ("V{step} {title}: {reason}", "V{step}「{title}」: {reason}"),
    "official": ("(official: checked against --pins)", "（公式: --pins と照合済み）"),
    "not-official": ("(not official: no --pins)", "（非公式: --pins なし）"),
    "verdict.valid": ("VALID", "有効"),
    "engine": ("Ballot engine: {engine}", "投票の検証エンジン: {engine}"),
    "error.engine": ("cannot use --engine native:", "--engine native は使えません:"),
    "verdict.valid.tail": ("({entries} entries, {seconds:.1f}s)", "（{entries} エントリ、{seconds:.1f} 秒）"),
    "verdict.invalid": ("INVALID", "無効"),
    "verdict.invalid.tail": (": checks {steps} failed", ": 検証 {steps} が不合格"),
    "verdict.not-fully-verified": ("NOT FULLY VERIFIED", "検証未完了"),
    "verdict.not-fully-verified.tail": (
        ": no check failed, but {steps} could not run for a missing input (see NOT CHECKED above)",
        ": 不合格の項目はありませんが、{steps} は入力が足りず検証できませんでした（上の「未検証」を参照）",
    ),
    "receipt.matches": (
        "RECEIPT MATCHES: the receipt's ballot is in the record (V25)",
        "受領証は一致: 受領証の票は記録に含まれています（V25）",
    ),
    "receipt.does-not-match": (
        "RECEIPT DOES NOT MATCH: the receipt does not match this record (V25, above); this says nothing "
        "against the record itself",
        "受領証は不一致: 受領証はこの記録と一致しません（V25、上記）。記録そのものの有効性とは別の問題です",
    ),
    # --- the end of the report: one sentence per property
    "props.title": ("What this verification shows", "この検証で確かめたこと"),
    "props.well-formed": (
        "Ballots well formed — every ballot encrypts a valid choice with valid proofs, is bound to this "
        "election and appears once",
        "投票の形式 — どの票も正しい証明付きで有効な選択を暗号化しており、"
        "この選挙に結び付き、重複していません",
    ),
    "props.recorded": (
        "Recorded — the ledger is one append-only, signed and witnessed log, and every ballot names a voter "
        "alias of the committed roll",
        "記録 — 台帳は署名と立会人の連署のある追記のみの一つの記録で、"
        "どの票も公約された名簿の仮名で投じられています",
    ),
    "props.counted": (
        "Counted as recorded — the counted ballots are those the public re-vote rule selects, and the "
        "encrypted tally is exactly their sum",
        "記録どおりの集計 — 集計された票は公開の再投票規則が選ぶ票であり、"
        "暗号化された集計はちょうどその和です",
    ),
    "props.decrypted": (
        "Tally decrypted correctly — the trustees' partial decryptions are proved and combine to the "
        "published counts",
        "集計の正しい復号 — 管理者（トラスティ）の部分復号は証明されており、"
        "結合すると公表された得票数になります",
    ),
    "props.declaration": (
        "Declaration matches — the commission's signed result declaration (result.pdf) states this record's "
        "result and final checkpoint, and every figure printed on it (votes, blank ballots, eligible voters, "
        "ballots counted, turnout) is the record's",
        "結果宣言の一致 — 選挙管理委員会が署名した結果宣言書（result.pdf）は"
        "この記録の結果と最終チェックポイントを示し、記載された数値（得票数、白票、選挙人名簿登録者数、"
        "投票者数、投票率）はすべて記録のものです",
    ),
    "props.line": ("- {prop}: {how}.", "・{prop}: {how}。"),
    "props.verified": ("verified ({steps})", "確認済み（{steps}）"),
    "props.failed": ("NOT verified: {steps} failed", "確認できず: {steps} が不合格"),
    "props.not-checked": ("not checked: {steps} could not run", "未検証: {steps} を実行できませんでした"),
    "props.not-run": (
        "not checked ({steps}: not applicable to this record)",
        "未検証（{steps}: この記録には該当なし）",
    ),
    "props.cannot": (
        "A public verifier cannot check eligibility beyond the roll: that each ballot was cast by the "
        "eligible resident behind its alias (the authentication evidence is private). That is the "
        "independent observers' evidence audit (tvote audit-evidence).",
        "公開の検証者には名簿を超えた選挙権の確認はできません。各票がその仮名に対応する有権者本人によって"
        "投じられたこと（本人確認の証拠は非公開）は、"
        "独立した監視者による証拠監査（tvote audit-evidence）で確かめます。",
    ),
    # --- what the command line prints before a verdict
    "error.record": ("cannot read the record:", "記録を読めません:"),
    "error.receipt": ("cannot read the receipt:", "受領証を読めません:"),
    "error.trust-root": ("cannot use the trust root:", "信頼の起点（ルート証明書）を使えません:"),
    "error.pins": ("cannot read the pins:", "固定値ファイル（pins）を読めません:"),
}

_BY_ENGLISH: Final[dict[str, str]] = {en: ja for en, ja in TEXTS.values()}


def text(key: str, lang: str = "en", **fields: object) -> str:
    """The phrase ``key`` in ``lang`` (``en`` or ``ja``), its ``{fields}`` filled in."""
    en, ja = TEXTS[key]
    return (ja if lang == "ja" else en).format(**fields)


def check_title(check: Check, lang: str = "en") -> str:
    return CHECK_TITLES_JA[check.id] if lang == "ja" else check.title


_NOT_APPLICABLE: Final[re.Pattern[str]] = re.compile(r"V(\d+) ([a-z.-]+): not applicable \((.*)\)", re.S)


def translate(english: str, lang: str) -> str:
    """A stored English phrase of :data:`TEXTS` (a not-checked reason, a note) in ``lang``; any other text
    (a check's own failure message, a note with figures) is returned unchanged."""
    if lang != "ja":
        return english
    m = _NOT_APPLICABLE.fullmatch(english)
    if m is not None and m.group(2) in CHECK_TITLES_JA:
        why = _BY_ENGLISH.get(m.group(3), m.group(3))
        return text(
            "note.not-applicable",
            "ja",
            step=m.group(1),
            check=m.group(2),
            title=CHECK_TITLES_JA[m.group(2)],
            why=why,
        )
    return _BY_ENGLISH.get(english, english)
