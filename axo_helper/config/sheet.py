"""The config being built (key -> value, key -> reason) and the planner decisions it
lays out: every Plan from planner.plan carries its settings, and its chat choice for
chat data; a Plan without them is refused rather than filled in here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from axo_helper.config.templating import comment_text
from axo_helper.specs import ChatChoice, ConfigSettings, Plan, Setting


@dataclass
class Sheet:
    """The config being built: a reason the plan gave for a key wins over the default."""

    reasons: dict[str, str]
    cfg: dict[str, Any] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, value: Any, reason: str | None = None) -> None:
        self.cfg[key] = value
        text = self.reasons.get(key) or reason
        if text:
            self.why[key] = comment_text(text)

    def put_setting(self, key: str, setting: Setting | None) -> None:
        """A key the planner decided in Plan.settings: its value with its own reason.

        The Setting's reason wins over plan.reasons: under FSDP, plan.reasons
        ["gradient_checkpointing"] explains the memory model's checkpointing, which
        fsdp_config carries, while the key itself is off.
        """
        if setting is None:  # the key does not apply to this plan
            return
        self.cfg[key] = setting.value
        self.why[key] = comment_text(setting.reason)


def settings_of(plan: Plan) -> ConfigSettings:
    """The planner's decisions beyond the TrainSetup; every Plan from planner.plan has them."""
    if plan.settings is None:
        raise ValueError(
            "this Plan has no settings: render lays out what planner.plan decided "
            "(build hand-made plans with planner.settings.decide_settings)"
        )
    return plan.settings


def chat_of(plan: Plan) -> ChatChoice:
    """The planner's chat decisions (chat.decide); every chat Plan from planner.plan has them."""
    if plan.chat is None:
        raise ValueError(
            "this Plan has no chat choice: render lays out what planner.plan decided "
            "(build hand-made plans with chat.decide)"
        )
    return plan.chat
