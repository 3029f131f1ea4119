"""The recipients directory, its CSV import and recipient lists (docs/api.md, "Recipients").

* :mod:`.model`: the wire shape of a recipient, field rules and per-account ceilings;
* :mod:`.numbers`: E.164 normalisation, fast for numbers already written ``+<digits>``;
* :mod:`.search`: folded names and their grams, and what a query matches;
* :mod:`.directory`: create, read, change, delete, search; the send path's opt-out refusal;
* :mod:`.importer`: CSV parsing and the COPY-based bulk upsert;
* :mod:`.lists`: lists and their members.
"""

from __future__ import annotations

from gateway.recipients.directory import is_opted_out, opted_out_error

__all__ = ["is_opted_out", "opted_out_error"]
