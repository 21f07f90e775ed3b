"""A realistic DOSIS CSV list: valid enterprise numbers, several products, roles, Dutch labels."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HEADER = (
    "enterprise_number;product_id;dossier_id;phase;status;detail_status;status_time;reference_url;"
    "reference_email;reference_contact;required_roles;public;action_required;action;visible_until\n"
)
PHASES = ["SAMENSTELLING_AANVRAAG", "behandeling dossier", "BESLISSING", "UITVOERING", "afgesloten"]
STATUSES = ["INGEDIEND", "in behandeling", "GOEDGEKEURD", "geweigerd", "BETAALD", "in onderzoek"]
ROLES = ["Bedrijfsleider", "Boekhouder", "Subsidieverantwoordelijke", "Aankoper"]
PRODUCTS = ["1502", "1519"]  # served by VLAIO in the demo catalog


def enterprise_number(n: int) -> str:
    first8 = f"0{200_000_00 + n:07d}"[:8]
    return f"{first8}{97 - int(first8) % 97:02d}"


def write_csv(path: Path, rows: int, enterprises: int = 200_000, seed: int = 7, prefix: str = "DOS") -> Path:
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        for i in range(rows):
            roles = "|".join(rng.sample(ROLES, rng.randint(1, 2)))
            when = (base + timedelta(seconds=i)).isoformat()
            action = rng.random() < 0.1
            out.write(
                f"{enterprise_number(rng.randrange(enterprises))};{PRODUCTS[i % 2]};{prefix}-{i:08d};"
                f"{rng.choice(PHASES)};{rng.choice(STATUSES)};stap {i % 7};{when};"
                f"https://www.vlaio.be/dossier/{i};;;{roles};{'ja' if i % 10 == 0 else 'nee'};"
                f"{'ja' if action else 'nee'};{'Bezorg de facturen' if action else ''};\n"
            )
    return path
