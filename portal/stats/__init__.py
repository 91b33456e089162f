"""Aggregate statistics: a coarse fact table kept in step with the tips, and the pages that count it.

`models.TipFact` holds one row per tip and receiving desk with nothing from the tip's content (days, codes,
ids); it outlives the tip (issue 5: aggregate statistics survive deletion). `facts.record_tip` keeps it in
step in the same transaction as each change to a tip; `figures` counts it; `suppression` decides what a
count may show (under 5: "fewer than 5"); `charts` draws the bar charts; `views` serves the back-office page
(`/staff/statistics`) and the public page (`/{lang}/statistics`).
"""
