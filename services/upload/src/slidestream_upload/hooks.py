"""tusd's HTTP hooks: decode the hook, call the workflow, answer tusd (one function per hook)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request

from slidestream_upload.adapters.tusd import HookRequest, hook_response
from slidestream_upload.workflow import UploadWorkflow

router = APIRouter(include_in_schema=False)


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
