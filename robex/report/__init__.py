"""Collect job rows, render paper tables (CSV + Markdown) and figures, and write claims reports."""
