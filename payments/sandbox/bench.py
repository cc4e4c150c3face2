"""Benchmark data straight into the sandbox's books, for thousands of methods and customers without a
gateway round trip each. Sandbox only: a real processor has no such calls, so they are not the
gateway's."""

import secrets

from .models import SandboxCustomer, SandboxToken

BATCH_SIZE = 2000


def tokens_like(*, token: str, count: int) -> list[str]:
    """``count`` new tokens that charge exactly like ``token`` and show the same display data."""
    source = SandboxToken.objects.get(token=token)
    tokens = [f"tok_sandbox_{secrets.token_hex(12)}" for _ in range(count)]
    copied = {
        field: getattr(source, field)
        for field in (
            "kind",
            "behaviour",
            "fingerprint",
            "last4",
            "brand",
            "exp_month",
            "exp_year",
            "bank_name",
        )
    }
    SandboxToken.objects.bulk_create(
        (SandboxToken(token=new, **copied) for new in tokens), batch_size=BATCH_SIZE
    )
    return tokens


def customers(count: int) -> list[str]:
    """``count`` new sandbox customers; their references."""
    references = [f"cus_sandbox_{secrets.token_hex(12)}" for _ in range(count)]
    SandboxCustomer.objects.bulk_create(
        (SandboxCustomer(reference=reference, metadata={"bench": "1"}) for reference in references),
        batch_size=BATCH_SIZE,
    )
    return references
