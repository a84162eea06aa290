"""The report rendered for people: one self-contained HTML file, or Markdown tables.

Both render the report document of `domain.report` as it is; the JSON format is that
document itself. Rendering is pure string work with every user string escaped.
"""
