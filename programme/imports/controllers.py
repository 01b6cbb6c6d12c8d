"""HTTP routes for admins to import CSV files: referrals and police-recorded incidents."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, QueryParameter

from programme.imports import rules, services
from programme.imports.rules import ImportKind
from programme.imports.schemas import DataDictionary, ImportReport
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.errors import Conflict, ErrorBody
from programme.platform.openapi import docs
from programme.platform.tables import Role

MAX_UPLOAD_BYTES = rules.MAX_UPLOAD_BYTES
NOTHING_IMPORTED = {
    422: ResponseSpec(
        ImportReport | ErrorBody,  # type: ignore[arg-type]
        description="Nothing was imported: the report lists every row's errors "
        "(or, for a bad query, the usual error body).",
        generate_examples=False,
    )
}


def _csv(columns: frozenset[str], **declared: Any) -> dict[str, Any]:
    return docs(
        **declared,
        body_media_type="text/csv",
        body_description="A CSV file with a header line; columns: " + ", ".join(sorted(columns)),
    )


def _answer(report: ImportReport, skip_invalid: bool) -> Response[ImportReport]:
    """422 when the file's errors kept everything out; 200 otherwise."""
    failed = rules.nothing_imported(report, skip_invalid=skip_invalid)
    return Response(report, status_code=422 if failed else 200)


class ImportController(Controller):
    path = "/imports"
    tags = ["imports"]
    guards = [access.requires(Role.admin)]

    @post(
        "/referrals",
        request_max_body_size=MAX_UPLOAD_BYTES,
        status_code=200,
        responses=NOTHING_IMPORTED,
        opt=_csv(rules.COLUMNS, raises=(Conflict,)),
    )
    async def import_referrals(
        self,
        request: Request,
        actor: access.SignedIn,
        state: State,
        skip_invalid: FromQuery[bool] = False,
        create_agencies: Annotated[
            bool,
            QueryParameter(
                description="Add agencies the file names that are not yet known; without it "
                "such a name is an error naming the closest known agencies."
            ),
        ] = False,
        dry_run: Annotated[
            bool, QueryParameter(description="Check the whole file and write nothing.")
        ] = False,
        override_reason: Annotated[
            str | None,
            QueryParameter(
                description="Why rows dated in a reported (locked) quarter are imported; "
                "kept in the audit trail.",
                max_length=500,
            ),
        ] = None,
    ) -> Response[ImportReport]:
        """Import a CSV file of referrals (the body); 422 with every row error when nothing was
        imported."""
        report = await services.import_referrals(
            await request.body(), actor, state.settings, today(),
            skip_invalid=skip_invalid, override_reason=override_reason,
            create_agencies=create_agencies, dry_run=dry_run,
        )  # fmt: skip
        return _answer(report, skip_invalid)

    @post(
        "/reoffending",
        request_max_body_size=MAX_UPLOAD_BYTES,
        status_code=200,
        responses=NOTHING_IMPORTED,
        opt=_csv(rules.INCIDENT_COLUMNS),
    )
    async def import_reoffending(
        self,
        request: Request,
        actor: access.SignedIn,
        state: State,
        skip_invalid: FromQuery[bool] = False,
        extracted_on: Annotated[
            date | None,
            QueryParameter(
                description="The day the police took the extract (YYYY-MM-DD); by default "
                "the latest offence date in the file. The reoffending analysis follows "
                "people no further than the latest extract."
            ),
        ] = None,
        dry_run: Annotated[
            bool, QueryParameter(description="Check the whole file and write nothing.")
        ] = False,
    ) -> Response[ImportReport]:
        """Import police-recorded incidents (CSV body); 422 listing every row if none imported."""
        report = await services.import_reoffending(
            await request.body(), actor,
            purpose_key(state.settings, KeyPurpose.import_fingerprint), today(),
            skip_invalid=skip_invalid, extracted_on=extracted_on, dry_run=dry_run,
        )  # fmt: skip
        return _answer(report, skip_invalid)

    @get("/{kind:str}/dictionary")
    async def data_dictionary(self, kind: FromPath[ImportKind], state: State) -> DataDictionary:
        """The columns a file of this kind may have: type, allowed values, which are required,
        and what happens to a row without them; made from the checks the import runs."""
        return await services.dictionary(kind, state.settings)

    @get(
        "/{kind:str}/template",
        media_type="text/csv",
        opt=docs(also_answers={"text/csv": "the first line of a file to fill in"}),
    )
    async def template(self, kind: FromPath[ImportKind], state: State) -> Response[str]:
        """A CSV file to fill in: its first line names every column the import takes."""
        dictionary = await services.dictionary(kind, state.settings)
        return Response(
            rules.template_csv(dictionary),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{kind.value}-template.csv"'},
        )
