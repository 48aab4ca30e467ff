"""Public shape of a user's monthly character quota."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class QuotaView(BaseModel):
    """This month's characters, as a perform request leaves them (held characters are not
    charged until the note is stored)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "charCount": 1240, "monthlyLimit": 10000, "charsUsedRaw": 1240, "charsUsedEffective": 1240,
        "remaining": 8760, "period": "2025-06", "resetsAt": "2025-07-01T00:00:00+00:00"}]})

    charCount: int = Field(description="Effective characters charged this month (raw x the model's cost factor).")
    monthlyLimit: int = Field(description="Effective characters allowed per month.")
    charsUsedRaw: int = Field(description="Characters of text spoken this month, before the cost factor.")
    charsUsedEffective: int = Field(description="Same as `charCount`.")
    remaining: int = Field(description="Effective characters left this month.")
    period: str = Field(description="The quota month, `YYYY-MM` (UTC).", examples=["2025-06"])
    resetsAt: dt.datetime = Field(description="When the next month's quota starts.")
