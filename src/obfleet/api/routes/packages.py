"""OCP's software package module: list, upload (multipart, streamed), delete, download."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, ok
from obfleet.api.paging import Page, PageRequest, page_request, paginate
from obfleet.api.schemas.packages import PackageOut
from obfleet.api.uploads import receive_file
from obfleet.packages.rpm import expansion_limit
from obfleet.records import packages as service
from obfleet.security.roles import Resource
from obfleet.services.users import Principal
from obfleet.store import package_chunks
from obfleet.store.models.packages import SoftwarePackage

router = APIRouter(tags=["software packages"])
READ = Depends(require(Resource.PACKAGE))
WRITE = require(Resource.PACKAGE, write=True)


def _base_url(ctx: CtxDep, request: Request) -> str:
    return (ctx.settings.advertise_url or str(request.base_url)).rstrip("/")


@router.get(
    "/api/v2/software-packages",
    dependencies=[READ],
    response_model=Envelope[Page[PackageOut]],
    summary="Query software packages",
)
def list_packages(
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    page: PageRequest = Depends(page_request),
    keyword: str | None = Query(None, max_length=255),
    type: list[str] | None = Query(None),
    version: list[str] | None = Query(None),
    operating_system: list[str] | None = Query(None, alias="operatingSystem"),
    architecture: list[str] | None = Query(None),
) -> EnvelopeResponse:
    """Uploaded software packages, a page at a time, by keyword, type, version, operating system and
    architecture."""
    base = _base_url(ctx, request)
    sortable = {
        "id": SoftwarePackage.id,
        "name": SoftwarePackage.name,
        "version": SoftwarePackage.version,
        "createTime": SoftwarePackage.create_time,
    }

    def row(package: SoftwarePackage) -> PackageOut:
        deletable = not service.in_use_by(session, package)
        return PackageOut.of(package, base, deletable, service.installations(session, package))

    stmt = service.query(keyword, type, version, operating_system, architecture)
    return ok(paginate(session, stmt, page, sortable, SoftwarePackage.id, row))


@router.post(
    "/api/v2/software-packages",
    response_model=Envelope[PackageOut],
    summary="Upload a software package (multipart/form-data, field 'file')",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_package(
    request: Request, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Upload an OBProxy RPM as multipart/form-data, field `file`. obfleet reads its name, version,
    operating system and architecture from the RPM header and keeps it in the metadb (so every
    replica can ship it)."""
    ctx = request.app.state.ctx
    packages_dir = ctx.settings.packages_dir
    received = await receive_file(request, "file", packages_dir, ctx.settings.max_upload_bytes)

    def record() -> PackageOut:
        with ctx.db.transaction() as session:
            package = service.add(
                session,
                packages_dir,
                received.path,
                size=received.size,
                sha1=received.sha1,
                creator=principal.username,
                expanded_limit=expansion_limit(ctx.settings.max_upload_bytes),
            )
            return PackageOut.of(package, _base_url(ctx, request))

    return ok(await run_in_threadpool(record))


@router.delete(
    "/api/v2/software-packages/{package_id}",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[None],
    summary="Delete a software package",
)
def delete_package(package_id: int, ctx: CtxDep, session: SessionDep) -> EnvelopeResponse:
    """Delete an uploaded package. Refused (409) while an OBProxy runs it or a task uses it."""
    service.delete(session, ctx.settings.packages_dir, package_id)
    return ok()


@router.get(
    "/api/v2/files/sys-package/{file_name}",
    dependencies=[READ],
    response_class=FileResponse,
    summary="Download a software package",
)
def download_package(file_name: str, ctx: CtxDep, session: SessionDep) -> FileResponse:
    """The package's file, as uploaded (hosts download packages from here)."""
    package = service.by_file_name(session, file_name)
    path = package_chunks.local_copy(ctx.db, ctx.settings.packages_dir, package)
    return FileResponse(path, filename=package.file_name, media_type="application/x-rpm")
