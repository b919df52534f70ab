"""The kiosk service's errors: one :class:`KioskError` with a stable ``code``, an HTTP status and the
English and Japanese text a kiosk screen shows.

Codes come from three places, each keeping its own spelling:

* the card layer (``card.*``, :data:`kiosk.card.MESSAGES`; a :class:`kiosk.card.CardError` becomes a
  :class:`KioskError` with the same code and text, ``tries_left`` included);
* the election server (``kiosk.*`` of the kiosk API, the JPKI ballot refusals ``jpki.*``, ``voter.*``,
  ``ballot.*``, ...; :data:`SERVER_MESSAGES` words the ones a voter or poll worker can meet; any other
  server code gets a general text, the server's English message kept in ``message``);
* the kiosk itself (:data:`KIOSK_MESSAGES`): the local API's own refusals and the network outcomes
  ``kiosk.unconfirmed`` / ``kiosk.not_cast`` (``docs/kiosk.md``, "Network trouble").

No message carries personal data: they name the check, never the person or the card's certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from .card import MESSAGES as CARD_MESSAGES
from .card import CardError, WrongPinError

__all__ = ["KIOSK_MESSAGES", "SERVER_MESSAGES", "KioskError"]

#: code -> (HTTP status, English, Japanese): the kiosk's own refusals and outcomes
KIOSK_MESSAGES: Final[Mapping[str, tuple[int, str, str]]] = MappingProxyType(
    {
        "kiosk.forbidden": (
            403,
            "This request did not come from the kiosk's own screen.",
            "この要求は投票端末の画面から送られたものではありません。",
        ),
        "kiosk.request": (
            422,
            "The request is malformed.",
            "要求の形式が正しくありません。",
        ),
        "kiosk.state": (
            409,
            "The kiosk is not ready for this step.",
            "投票端末はこの操作を受け付けられる状態ではありません。",
        ),
        "kiosk.voter_session": (
            403,
            "This voting session has ended. Please ask a poll worker.",
            "この投票の受付は終了しました。係員にお声がけください。",
        ),
        "kiosk.no_card": (
            409,
            "Please insert your My Number card first.",
            "先にマイナンバーカードを挿入してください。",
        ),
        "kiosk.ballot_invalid": (
            422,
            "The ballot could not be checked. Nothing was cast; please start again.",
            "投票内容を確認できませんでした。投票は行われていません。最初からやり直してください。",
        ),
        "kiosk.ballot_election": (
            422,
            "The ballot is not for this election. Nothing was cast.",
            "この選挙の投票ではありません。投票は行われていません。",
        ),
        "kiosk.poll_worker_unknown": (
            409,
            "The kiosk has restarted or the poll worker PIN was mistyped too often: "
            "close polls at this kiosk and open them again.",
            "投票端末が再起動したか、係員用暗証番号の誤りが多すぎます。この端末の投票を締め切り、もう一度開始してください。",
        ),
        "kiosk.offline": (
            503,
            "The election server cannot be reached. Please ask a poll worker.",
            "選挙サーバーに接続できません。係員にお声がけください。",
        ),
        "kiosk.not_cast": (
            503,
            "Your ballot was not cast and nothing was recorded. Please try again.",
            "投票は行われておらず、何も記録されていません。もう一度お試しください。",
        ),
        "kiosk.unconfirmed": (
            503,
            "The server did not confirm your ballot. Please wait for a poll worker; do not leave yet.",
            "サーバーから投票の受付確認がありません。その場で係員をお待ちください。",
        ),
        "kiosk.server": (
            502,
            "The election server refused the request.",
            "選挙サーバーが要求を受け付けませんでした。",
        ),
    }
)

#: server code -> (English, Japanese) for the refusals a kiosk screen shows in words of its own; the HTTP
#: status is the server's
SERVER_MESSAGES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "kiosk.required": (
            "The kiosk's request was not signed. Please ask a poll worker.",
            "投票端末の要求に署名がありません。係員にお声がけください。",
        ),
        "kiosk.unknown": (
            "This kiosk is not enrolled for the election.",
            "この投票端末は登録されていません。",
        ),
        "kiosk.revoked": (
            "This kiosk has been revoked by the election commission and can no longer be used.",
            "この投票端末は選挙管理委員会により失効されており、使用できません。",
        ),
        "kiosk.signature": (
            "The kiosk's signature was refused by the server.",
            "投票端末の署名がサーバーで確認できませんでした。",
        ),
        "kiosk.clock": (
            "The kiosk's clock is wrong. Please ask a poll worker.",
            "投票端末の時計が正しくありません。係員にお声がけください。",
        ),
        "kiosk.replay": (
            "The server refused a repeated request. Please try again.",
            "サーバーが重複した要求を拒否しました。もう一度お試しください。",
        ),
        "kiosk.poll_worker": (
            "The poll worker PIN is wrong.",
            "係員用暗証番号が違います。",
        ),
        "kiosk.poll_worker_locked": (
            "The poll worker PIN is locked after too many wrong tries: the commission must issue a new one.",
            "係員用暗証番号の誤りが多すぎるためロックされました。選挙管理委員会に再発行を依頼してください。",
        ),
        "kiosk.session": (
            "The server's record of this kiosk's polls differs (already open or not open).",
            "この投票端末の開始・締切の状態がサーバーの記録と一致しません。",
        ),
        "kiosk.not_open": (
            "Polls are not open at this kiosk.",
            "この投票端末では投票が開始されていません。",
        ),
        "kiosk.opened_at": ("The kiosk's clock is wrong.", "投票端末の時計が正しくありません。"),
        "kiosk.closed_at": ("The kiosk's clock is wrong.", "投票端末の時計が正しくありません。"),
        "voter.not_on_roll": (
            "The card's holder is not on the electoral roll of this election.",
            "このカードの方はこの選挙の選挙人名簿に登録されていません。",
        ),
        "voter.unmatched": (
            "The card's holder could not be found on the electoral roll.",
            "選挙人名簿でこのカードの方を確認できませんでした。",
        ),
        "voter.kiosk_voted": (
            "This voter has already voted at a polling place.",
            "この方は既に投票所で投票されています。",
        ),
        "jpki.revoked": (
            "The card's signing certificate has been revoked.",
            "このカードの署名用電子証明書は失効しています。",
        ),
        "jpki.expired": (
            "The card's signing certificate has expired.",
            "このカードの署名用電子証明書は有効期限が切れています。",
        ),
        "jpki.not_yet_valid": (
            "The card's signing certificate is not valid yet.",
            "このカードの署名用電子証明書はまだ有効ではありません。",
        ),
        "jpki.chain": (
            "The card's signing certificate is not accepted for this election.",
            "このカードの署名用電子証明書はこの選挙で利用できません。",
        ),
        "jpki.revocation_unavailable": (
            "The card's certificate status cannot be checked right now. Nothing was cast.",
            "現在、電子証明書の失効確認ができません。投票は行われていません。",
        ),
        "voting.not_open": ("Voting is not open.", "投票期間外です。"),
        "voting.closed": ("Voting has closed.", "投票は締め切られました。"),
        "election.phase": ("Voting is not open.", "投票期間外です。"),
        "challenge.expired": (
            "The signing took too long. Nothing was cast; please try again.",
            "署名に時間がかかりすぎました。投票は行われていません。もう一度お試しください。",
        ),
    }
)
_SERVER_GENERAL: Final[tuple[str, str]] = (
    "The election server refused the ballot. Nothing was cast. Please ask a poll worker.",
    "選挙サーバーが受け付けませんでした。投票は行われていません。係員にお声がけください。",
)


class KioskError(Exception):
    """A refusal or outcome of the kiosk service, as its local API answers it (``to_body``)."""

    def __init__(
        self,
        code: str,
        *,
        status: int | None = None,
        message_en: str | None = None,
        message_ja: str | None = None,
        detail: str | None = None,
        **extra: Any,
    ) -> None:
        known = KIOSK_MESSAGES.get(code)
        if known is None and (message_en is None or message_ja is None or status is None):
            raise ValueError(f"unregistered kiosk error code {code!r}")
        self.code = code
        self.status = status if status is not None else known[0]  # type: ignore[index]
        self.message_en = message_en if message_en is not None else known[1]  # type: ignore[index]
        self.message_ja = message_ja if message_ja is not None else known[2]  # type: ignore[index]
        self.detail = detail
        self.extra = extra
        super().__init__(f"[{code}] {detail or self.message_en}")

    @classmethod
    def from_card(cls, e: CardError) -> KioskError:
        """A card failure, with kiosk.card's code and messages (and ``tries_left`` for a wrong PIN)."""
        status = {"card.reader_unavailable": 503, "card.locked": 423}.get(e.code, 409)
        extra: dict[str, Any] = {"tries_left": e.tries_left} if isinstance(e, WrongPinError) else {}
        if e.code not in CARD_MESSAGES:  # pragma: no cover - every CardError subclass is registered
            raise ValueError(f"unregistered card error code {e.code!r}")
        return cls(e.code, status=status, message_en=e.message_en, message_ja=e.message_ja, **extra)

    @classmethod
    def from_server(cls, status: int, code: str, message: str, details: Any = None) -> KioskError:
        """A refusal from the election server: its code kept, worded for the screen."""
        en, ja = SERVER_MESSAGES.get(code, _SERVER_GENERAL)
        extra: dict[str, Any] = {"server_message": message[:300]}
        if isinstance(details, Mapping) and isinstance(details.get("tries_left"), int):
            extra["tries_left"] = details["tries_left"]
            en, ja = f"{en} {details['tries_left']} tries left.", f"{ja}残り{details['tries_left']}回です。"
        return cls(code, status=status if 400 <= status < 600 else 502, message_en=en, message_ja=ja, **extra)

    def to_body(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "code": self.code,
            "message": self.message_en,
            "message_ja": self.message_ja,
            "message_en": self.message_en,
            **self.extra,
        }
        return {"error": err}
