"""The GL context and the few GL calls moderngl cannot make (through libOpenGL and ctypes).

:func:`create_gl_context` prefers a hardware EGL device and falls back to Mesa's llvmpipe;
:func:`gl_finish` waits for the GPU without holding the GIL; :func:`mirrored_repeat` and
:func:`write_cube_level` set what moderngl's API has no words for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import moderngl
import numpy as np
import numpy.typing as npt

SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "lavapipe")


def _load_gl() -> Any:
    """libOpenGL through ctypes (None if absent): ``glFinish`` and the cube mip uploads.

    moderngl holds the GIL for the whole of every GL call. A render waited for with its
    ``ctx.finish()`` froze every other Python thread for the frame's whole raster time (on
    llvmpipe tens of milliseconds: the streaming worker's event loop could neither send RTP
    nor take poses meanwhile). glvnd's libOpenGL dispatches to the context current on the
    calling thread, whichever library made it current.
    """
    for name in ("libOpenGL.so.0", ctypes.util.find_library("OpenGL"), "libGL.so.1"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.glFinish  # noqa: B018 - probe: raises AttributeError if missing
            return lib
        except (OSError, AttributeError):
            continue
    return None


_GL_LIB = _load_gl()
_GL_FINISH = None if _GL_LIB is None else _GL_LIB.glFinish


def gl_finish(ctx: moderngl.Context) -> None:
    """Wait for the GPU, through libOpenGL when there is one, so the GIL is free meanwhile."""
    if _GL_FINISH is not None:
        _GL_FINISH()
    else:
        ctx.finish()


def _egl_context(backend: str, device_index: int) -> moderngl.Context:
    # The stubs type **settings as dicts; they are plain keyword arguments for glcontext.
    settings: dict[str, Any] = {"backend": backend, "device_index": device_index}
    return moderngl.create_context(standalone=True, require=330, **settings)


def create_gl_context(
    backend: str | None = "egl", device_index: int | None = None
) -> moderngl.Context:
    """A standalone GL 3.3+ context. With EGL and no ``device_index``, the first hardware EGL
    device is used if there is one, else the first device (Mesa llvmpipe)."""
    if backend is None:
        return moderngl.create_context(standalone=True, require=330)
    if device_index is not None:
        return _egl_context(backend, device_index)
    fallback: moderngl.Context | None = None
    for index in range(16):
        try:
            ctx = _egl_context(backend, index)
        except Exception:  # past the last device (glcontext raises a plain Exception)
            break
        name = str(ctx.info["GL_RENDERER"]).lower()
        if not any(s in name for s in SOFTWARE_RENDERERS):
            if fallback is not None:
                fallback.release()
            return ctx
        if fallback is None:
            fallback = ctx
        else:
            ctx.release()
    if fallback is None:
        raise RuntimeError(f"no usable {backend} device for OpenGL 3.3")
    return fallback


def renderer_info(backend: str | None = "egl") -> str:
    """The GL renderer string of the device a Renderer would use ("llvmpipe ..." or a GPU)."""
    ctx = create_gl_context(backend)
    try:
        return str(ctx.info["GL_RENDERER"])
    finally:
        ctx.release()


def mirrored_repeat(tex: moderngl.Texture, x: bool, y: bool) -> None:
    """MIRRORED_REPEAT wrapping, which moderngl's repeat_x/repeat_y cannot say."""
    gl = _GL_LIB
    if gl is None:
        raise RuntimeError("libOpenGL not found for MIRRORED_REPEAT")
    tex.use(location=0)
    for on, pname in ((x, 0x2802), (y, 0x2803)):  # GL_TEXTURE_WRAP_S, GL_TEXTURE_WRAP_T
        if on:
            gl.glTexParameteri(0x0DE1, pname, 0x8370)  # GL_TEXTURE_2D, GL_MIRRORED_REPEAT


def write_cube_level(
    tex: moderngl.TextureCube, level: int, faces: npt.NDArray[Any], unit: int
) -> None:
    """Fill one mip level of a cube texture (moderngl writes level 0 only): glTexSubImage2D."""
    gl = _GL_LIB
    if gl is None:
        raise RuntimeError("libOpenGL not found for cube map mip levels")
    tex.use(location=unit)
    size = faces.shape[1]
    for face in range(6):
        data = np.ascontiguousarray(faces[face], dtype=np.float32)
        gl.glTexSubImage2D(
            0x8515 + face,  # GL_TEXTURE_CUBE_MAP_POSITIVE_X + face
            level,
            0,
            0,
            size,
            size,
            0x1907,  # GL_RGB
            0x1406,  # GL_FLOAT
            data.ctypes.data_as(ctypes.c_void_p),
        )
