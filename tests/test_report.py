"""papers/reproduction.md is generated from the committed records and tables (sierlib.report): it
must be exactly what the code writes now, so no figure in it can differ from the tables."""
from sierlib.report import README, REPORT, readme_with_headline, render_report


def test_the_committed_report_is_what_the_code_writes():
    assert REPORT.read_text() == render_report(), "regenerate it: sier report (and commit papers/reproduction.md)"


def test_the_report_includes_the_generated_tables_and_speaks_of_no_session():
    text = REPORT.read_text()
    for name in ("table1.md", "table2.md", "recipe_tables.md"):
        body = (REPORT.parents[1] / "results" / name).read_text().split("\n", 1)[1].strip()
        assert body.replace("\n## ", "\n### ") in text, name  # its headings under the report's sections
    assert "session" not in text.lower()


def test_the_readme_headline_table_is_the_generated_one():
    text = README.read_text()
    assert text == readme_with_headline(text), "regenerate it: sier report"
    first_screen = "\n".join(text.splitlines()[:60])  # what the method is, the headline table, the set-up
    assert "gradient-reversal" in first_screen and "recipe, AL (γ chosen on validation)" in first_screen
    assert "make run" in first_screen and "make test" in first_screen
