"""The Litestar application: routes, security, errors and the database pool."""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.htmx import HTMXPlugin
from litestar.types import ControllerRouterHandler

from analysis import pages as analysis_pages
from analysis.controllers import AnalysisController, ReportController
from outcomes import pages as outcome_pages
from outcomes import services as outcomes
from outcomes.controllers import VictimController
from programme.delivery import pages as delivery_pages
from programme.delivery.controllers import GroupController, ProgrammeController, SessionController
from programme.imports import pages as import_pages
from programme.imports.controllers import ImportController
from programme.platform import database, openapi
from programme.platform.access_log import AccessLog
from programme.platform.accounts import access, passwords
from programme.platform.accounts import pages as account_pages
from programme.platform.accounts.controllers import (
    AccountController,
    AgencyController,
    AuthController,
)
from programme.platform.accounts.services import AddressPace, RecentRefusals, sign_in_pace
from programme.platform.audit import pages as audit_pages
from programme.platform.audit.controllers import AuditController
from programme.platform.controllers import health
from programme.platform.http_errors import EXCEPTION_HANDLERS
from programme.platform.http_inputs import (
    check_every_route_checks_its_input,
    record_query_parameters,
    refuse_unreadable_input,
)
from programme.platform.locked_quarters.controllers import LockedQuarterController
from programme.platform.logs import logging_config
from programme.platform.settings import Settings, get_settings
from programme.platform.sign_in_door import SignInDoor
from programme.platform.web import browser
from programme.platform.web.controllers import PAGES
from referrals import pages as referral_pages
from referrals.controllers import ReferralController, ReturnedReferralController
from referrals.services import OutcomesHooks

ROUTES: list[ControllerRouterHandler] = [
    health,
    AuthController,
    AccountController,
    AgencyController,
    AuditController,
    ReferralController,
    ReturnedReferralController,
    ImportController,
    ProgrammeController,
    GroupController,
    SessionController,
    VictimController,
    ReportController,
    LockedQuarterController,
    AnalysisController,
]

OUTCOMES = OutcomesHooks(
    record_victims=outcomes.record_victims,
    police_recorded_before=outcomes.police_recorded_before,
    supported_referrals=outcomes.supported_referrals,
)
"""Referrals hand victims to, and read prior incidents from, the outcomes domain above them."""


def create_app(
    settings: Settings | None = None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    extra_pages: Sequence[ControllerRouterHandler] = (),
) -> Litestar:
    """Build the service. ``extra_routes`` and ``extra_pages`` exist for tests of access rules."""
    settings = settings or get_settings()
    settings.require_keys()
    jwt_auth = access.build_jwt_auth(settings)
    passwords.size_pool(settings.password_hash_workers)

    async def open_pool() -> None:
        # min_size=0: start even if the database is briefly away; connect on demand.
        await database.engine().start_connection_pool(min_size=0, max_size=settings.pool_max_size)

    async def close_pool() -> None:
        # Bounded: a connection stuck in a request must not keep the server from stopping.
        await database.close_pool()

    app = Litestar(
        route_handlers=[
            *ROUTES,
            *extra_routes,
            browser.pages_router(
                settings,
                [
                    *PAGES,
                    *referral_pages.PAGES,
                    *delivery_pages.PAGES,
                    *import_pages.PAGES,
                    *outcome_pages.PAGES,
                    *account_pages.PAGES,
                    *audit_pages.PAGES,
                    *analysis_pages.PAGES,
                    *extra_pages,
                ],
            ),
            browser.static_files_router(),
        ],
        template_config=browser.template_config(
            [
                referral_pages.TEMPLATES,
                delivery_pages.TEMPLATES,
                import_pages.TEMPLATES,
                outcome_pages.TEMPLATES,
                account_pages.TEMPLATES,
                audit_pages.TEMPLATES,
                analysis_pages.TEMPLATES,
            ],
            delivery_pages.TEMPLATE_GLOBALS,
        ),
        plugins=[HTMXPlugin()],
        stores={browser.SESSION_STORE: browser.session_store(settings)},
        on_app_init=[jwt_auth.on_app_init],
        on_startup=[open_pool],
        on_shutdown=[close_pool],
        dependencies={
            **access.DEPENDENCIES,
            "outcomes": Provide(lambda: OUTCOMES, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=refuse_unreadable_input,
        logging_config=logging_config(),
        state=State(
            {
                "settings": settings,
                "jwt_auth": jwt_auth,
                "refusals": RecentRefusals(),
                "sign_in_pace": AddressPace(sign_in_pace(settings)),
            }
        ),
        openapi_config=openapi.config(
            title="Inspire to Change referral and outcome tracker", version="0.1.0"
        ),
    )
    access.check_every_route_declares_roles(app)
    check_every_route_checks_its_input(app)
    record_query_parameters(app)
    app.state.navigation = browser.collect_navigation(app)
    # Outside Litestar's own error handling, so every answer is seen, 401s and 404s too;
    # the sign-in door inside them, so its refusals are logged and carry the headers.
    app.asgi_handler = AccessLog(browser.SecurityHeaders(SignInDoor(app.asgi_handler, app)))
    return app
