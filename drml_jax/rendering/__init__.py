"""What a person reads: Markdown tables, results pages and figures."""
