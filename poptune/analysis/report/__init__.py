"""The report: analysis/report.md, report.html, plots/ and what the terminal shows.

- ``summary``: the head of report.md (data, search, winner, finalists, the test table and the
  verdict) and the tables printed to the terminal;
- ``sections``: the sections that follow it (families, ensemble, the search, the bundled model
  by popularity band, what drives popularity, the bundle, where to look further) and the
  terminal's per-family and ensemble lines;
- ``plots``: the PNG figures, from plain numbers;
- ``html``: report.html, report.md rendered with its images embedded.

Everything here turns numbers into words and pictures; nothing is measured or trained here.
"""
