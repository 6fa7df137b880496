"""tusd's HTTP hooks: check that tusd sent them, decode the hook, call the workflow, answer tusd
(one function per hook).

The router is served on the internal hooks port only (``HOOKS_PORT``), never beside the partner
API, and every hook must carry the shared secret as its HTTP Basic password: hooks name uploads
by object key alone, so whoever could send one could advance or finish any tenant's upload.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException, Request
from pydantic import SecretBytes

from slidestream_contracts.tokens import basic_password
from slidestream_upload.adapters.tusd import HookRequest, hook_response
from slidestream_upload.workflow import UploadWorkflow

HOOKS_REALM = "tusd-hooks"


def require_tusd(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """401 without credentials, 403 with a wrong secret (compared in constant time)."""
    password = basic_password(authorization)
    if password is None:
        raise HTTPException(
            status_code=401,
            detail={"reason": "unauthorized", "message": "hooks need tusd's credentials"},
            headers={"WWW-Authenticate": f'Basic realm="{HOOKS_REALM}"'},
        )
    secret: SecretBytes = request.app.state.tusd_hooks_secret
    if not hmac.compare_digest(password.encode("utf-8"), secret.get_secret_value()):
        raise HTTPException(
            status_code=403, detail={"reason": "forbidden", "message": "wrong hooks secret"}
        )


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_tusd)])


def _workflow(request: Request) -> UploadWorkflow:
    workflow: UploadWorkflow = request.app.state.workflow
    return workflow


@router.post("/hooks/tusd")
async def tusd_hook(hook: HookRequest, request: Request, tasks: BackgroundTasks) -> dict[str, Any]:
    workflow = _workflow(request)
    event = hook.event
    match hook.type:
        case "pre-create":
            return await workflow.pre_create(event)
        case "post-create":
            await workflow.post_create(event)
        case "post-receive":
            await workflow.post_receive(event)
        case "pre-terminate":
            return await workflow.pre_terminate(event)
        case "post-terminate":
            await workflow.post_terminate(event)
        case "post-finish":
            slide_id = await workflow.post_finish(event)
            # Verification reads the whole object: answer tusd first. If this process dies
            # before it finishes, the reconciliation loop finalizes the upload instead.
            if slide_id is not None:
                tasks.add_task(workflow.finalize, slide_id)
    return hook_response()
