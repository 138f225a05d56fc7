"""A strict, bounded reader for glTF 2.0 packages: ``.glb``, ``.gltf`` (+ resources), ``.zip``.

Uploaded scenes are hostile input. This module is the only code that turns an uploaded file
into glTF JSON and buffers, so it enforces, before anything is decoded or rendered:

- container structure (GLB header and chunks, JSON that is a UTF-8 object, ``asset.version``);
- URIs: only relative paths inside the package or base64 ``data:`` URIs, never a scheme, an
  absolute path, a drive letter, a backslash or a ``..`` segment (also when percent-encoded);
- files: never follows a symlink, never opens anything outside the package's directory (paths
  are walked component by component with ``O_NOFOLLOW`` relative to a directory descriptor);
- zips: entry count, total size and compression ratio from the central directory, enforced
  again while inflating (headers can lie), unsafe entry names and symlink entries rejected;
- sizes and counts (:class:`GltfLimits`), image formats and declared pixel counts (read from
  the image header, never by decoding).

Every failure is a :class:`GltfPackageError` with a stable ``code`` and a JSON ``pointer``.

Usage::

    pkg = load_package(Path("scene.glb"))
    prim = pkg.document["meshes"][0]["primitives"][0]
    positions = pkg.read_accessor(prim["attributes"]["POSITION"])  # (count, 3) float32

The package is split by concept; this module is its public face (callers import from here):
``errors`` (the error and the limits), ``container`` (GLB chunks, strict JSON, pointer-carrying
accessors of the document), ``sources`` (URIs, files and zips), ``images`` (formats and sizes
from headers), ``package`` (:class:`GltfPackage` and its typed accessor reads), ``counts``
(object and triangle counts) and ``loader`` (:func:`load_package`).
"""

from workers.rendering.gltf_package.container import (
    CHUNK_BIN,
    CHUNK_JSON,
    GLB_MAGIC,
    get_int,
    get_list,
    get_ref,
    not_a_glb_message,
    parse_glb,
    parse_json,
    ptr,
)
from workers.rendering.gltf_package.counts import (
    check_counts,
    instanced_triangles,
    iter_primitives,
    mesh_triangle_counts,
    primitive_triangles,
)
from workers.rendering.gltf_package.errors import GltfLimits, GltfPackageError
from workers.rendering.gltf_package.images import ImageInfo, check_image, sniff_image
from workers.rendering.gltf_package.loader import load_package
from workers.rendering.gltf_package.package import (
    COMPONENT_DTYPES,
    TYPE_SHAPES,
    AccessorLayout,
    GltfPackage,
    accessor_layout,
)
from workers.rendering.gltf_package.sources import (
    DataUri,
    DirSource,
    ZipSource,
    check_uri,
    decode_data_uri,
)

__all__ = [
    "CHUNK_BIN",
    "CHUNK_JSON",
    "COMPONENT_DTYPES",
    "GLB_MAGIC",
    "TYPE_SHAPES",
    "AccessorLayout",
    "DataUri",
    "DirSource",
    "GltfLimits",
    "GltfPackage",
    "GltfPackageError",
    "ImageInfo",
    "ZipSource",
    "accessor_layout",
    "check_counts",
    "check_image",
    "check_uri",
    "decode_data_uri",
    "get_int",
    "get_list",
    "get_ref",
    "instanced_triangles",
    "iter_primitives",
    "load_package",
    "mesh_triangle_counts",
    "not_a_glb_message",
    "parse_glb",
    "parse_json",
    "primitive_triangles",
    "ptr",
    "sniff_image",
]
