"""The register's rows are drawn once and kept: a kept row is the row drawn afresh, and a
row that changes in anything it shows is drawn anew."""

from __future__ import annotations

from uuid import uuid4

from jinja2 import Template

from programme.delivery import pages
from programme.platform.web import browser

ENGINE = browser.template_config([pages.TEMPLATES], pages.TEMPLATE_GLOBALS).instance
assert ENGINE is not None


def _template() -> Template:
    return ENGINE.engine.get_template(pages.REGISTER_ROW)


def _row(**changes: object) -> pages.RegisterLine:
    return pages.RegisterLine(
        **{  # type: ignore[arg-type]
            "referral_id": REFERRAL,
            "reference": "ITC-000123",
            "status": "engaged",
            "mark": "attended",
            "marked_by": "facilitator-1",
            "error": None,
            **changes,
        }
    )


REFERRAL = uuid4()


def test_a_kept_row_is_the_row_drawn_afresh():
    template = _template()
    for row in (_row(), _row(marked_by=None, mark=""), _row(status="accepted")):
        first = pages._drawn_row(template, row)
        assert pages._drawn_row(template, row) is first  # kept, not drawn again
        assert str(first) == template.render(row=pages.RegisterRow.of(row))


def test_a_changed_mark_is_drawn_anew_with_that_radio_chosen():
    template = _template()
    attended = pages._drawn_row(template, _row(mark="attended"))
    absent = pages._drawn_row(template, _row(mark="absent"))
    assert attended != absent
    assert f'id="mark-{REFERRAL}-4" name="mark-{REFERRAL}" type="radio" value="absent" checked' in (
        absent
    )
    assert 'value="absent" checked' not in attended
    assert "Marked absent by facilitator-1" in absent


def test_an_error_and_a_new_status_are_drawn_anew():
    template = _template()
    plain = pages._drawn_row(template, _row(marked_by=None, mark=""))
    field = pages.mark_field(REFERRAL)
    wrong = pages._drawn_row(template, _row(marked_by=None, mark="", error="Mark ITC-000123"))
    assert "govuk-form-group--error" in wrong and "govuk-form-group--error" not in plain
    assert f'aria-describedby="{field}-error"' in wrong
    started = pages._drawn_row(template, _row(marked_by=None, mark="", status="started"))
    assert "govuk-tag--green" in started and "govuk-tag--green" not in plain


def test_what_a_row_shows_is_escaped():
    template = _template()
    row = _row(reference="<script>x</script>", marked_by="a&b")
    html = pages._drawn_row(template, row)
    assert "<script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "a&amp;b" in html


def test_the_status_tag_names_a_new_referral_new_and_escapes():
    assert pages.status_tag("accepted") == '<strong class="govuk-tag govuk-tag--blue">new</strong>'
    assert pages.status_tag("<b>_x") == (
        '<strong class="govuk-tag govuk-tag--grey">&lt;b&gt; x</strong>'
    )
