"""A loaded package (:class:`GltfPackage`): its document, buffers and images, and typed,
bounds-checked accessor reads (strides, normalisation, sparse substitution)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.rendering.gltf_package.container import get_int, get_list, get_ref, ptr
from workers.rendering.gltf_package.errors import GltfPackageError

# componentType -> little-endian dtype (glTF data is always little-endian).
COMPONENT_DTYPES: dict[int, np.dtype[Any]] = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
# accessor.type -> (columns, rows); matrices are column-major.
TYPE_SHAPES: dict[str, tuple[int, int]] = {
    "SCALAR": (1, 1),
    "VEC2": (1, 2),
    "VEC3": (1, 3),
    "VEC4": (1, 4),
    "MAT2": (2, 2),
    "MAT3": (3, 3),
    "MAT4": (4, 4),
}
_NORMALIZE_DIVISORS = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}
_SPARSE_INDEX_TYPES = (5121, 5123, 5125)
# --------------------------------------------------------------------------- accessors


@dataclass(frozen=True)
class AccessorLayout:
    dtype: np.dtype[Any]
    columns: int
    rows: int
    column_stride: int
    element_size: int
    normalized: bool
    component_type: int

    @property
    def components(self) -> int:
        return self.columns * self.rows


def accessor_layout(accessor: dict[str, Any], pointer: str) -> AccessorLayout:
    """Element layout of an accessor, incl. the column padding glTF requires for small matrices."""
    component_type = accessor.get("componentType")
    dtype = COMPONENT_DTYPES.get(component_type) if isinstance(component_type, int) else None
    if dtype is None or isinstance(component_type, bool):
        raise GltfPackageError(
            "accessor_invalid",
            f"componentType {component_type!r} is not valid",
            f"{pointer}/componentType",
        )
    type_name = accessor.get("type")
    shape = TYPE_SHAPES.get(type_name) if isinstance(type_name, str) else None
    if shape is None:
        raise GltfPackageError(
            "accessor_invalid", f"type {type_name!r} is not valid", f"{pointer}/type"
        )
    normalized = accessor.get("normalized", False)
    if not isinstance(normalized, bool):
        raise GltfPackageError(
            "accessor_invalid", "normalized must be a boolean", f"{pointer}/normalized"
        )
    if normalized and component_type not in _NORMALIZE_DIVISORS:
        raise GltfPackageError(
            "accessor_invalid",
            "only 8- and 16-bit integer accessors can be normalized",
            f"{pointer}/normalized",
        )
    columns, rows = shape
    size = dtype.itemsize
    column_stride = rows * size if columns == 1 else (rows * size + 3) // 4 * 4
    return AccessorLayout(
        dtype=dtype,
        columns=columns,
        rows=rows,
        column_stride=column_stride,
        element_size=columns * column_stride,
        normalized=normalized,
        component_type=int(component_type),  # type: ignore[arg-type]  # checked above
    )


# --------------------------------------------------------------------------- the package


@dataclass
class GltfPackage:
    """A loaded glTF: the JSON document and every buffer, fully in memory and bounds-checked."""

    document: dict[str, Any]
    buffers: list[bytes]
    # Encoded bytes of images referenced by uri (bufferView images are sliced on demand).
    image_data: dict[int, bytes] = field(default_factory=dict)
    container: str = ""  # "glb", "gltf" or "zip"

    def buffer_view(self, index: int) -> dict[str, Any]:
        views = get_list(self.document, "bufferViews")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(views):
            raise GltfPackageError(
                "index_out_of_range", f"no bufferView {index!r}", ptr("bufferViews", str(index))
            )
        return views[index]

    def buffer_view_bytes(self, index: int) -> memoryview:
        view = self.buffer_view(index)
        pointer = ptr("bufferViews", index)
        buffer_index = get_ref(view, "buffer", pointer, self.buffers, "buffer")
        offset = get_int(view, "byteOffset", pointer, default=0)
        length = get_int(view, "byteLength", pointer, minimum=1)
        buffer = self.buffers[buffer_index]
        if offset + length > len(buffer):
            raise GltfPackageError(
                "buffer_view_out_of_bounds",
                f"bufferView {index} spans bytes {offset}..{offset + length} "
                f"of buffer {buffer_index}, which has {len(buffer)}",
                pointer,
            )
        return memoryview(buffer)[offset : offset + length]

    def image_bytes(self, index: int) -> bytes:
        images = get_list(self.document, "images")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(images):
            raise GltfPackageError("index_out_of_range", f"no image {index!r}", ptr("images"))
        if index in self.image_data:
            return self.image_data[index]
        image = images[index]
        pointer = ptr("images", index)
        if "bufferView" not in image:
            raise GltfPackageError("image_invalid", "image has neither uri nor bufferView", pointer)
        view_index = get_int(image, "bufferView", pointer)
        return bytes(self.buffer_view_bytes(view_index))

    def read_accessor(self, index: int) -> npt.NDArray[Any]:
        """Accessor data as an array of shape (count, components), a copy owned by the caller.

        Integer data keeps its dtype unless ``normalized``, which gives float32 in [0, 1] or
        [-1, 1]. Sparse substitution is applied.
        """
        accessors = get_list(self.document, "accessors")
        pointer = ptr("accessors", index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(accessors):
            raise GltfPackageError("index_out_of_range", f"no accessor {index!r}", pointer)
        accessor = accessors[index]
        layout = accessor_layout(accessor, pointer)
        count = get_int(accessor, "count", pointer, minimum=1)
        if "bufferView" in accessor:
            view_index = get_int(accessor, "bufferView", pointer)
            offset = get_int(accessor, "byteOffset", pointer, default=0)
            stride = self._stride(view_index, layout)
            data = self._strided(view_index, offset, stride, count, layout, pointer)
        else:
            data = np.zeros((count, layout.components), dtype=layout.dtype)
        if "sparse" in accessor:
            self._apply_sparse(data, accessor["sparse"], count, layout, pointer + "/sparse")
        if layout.normalized:
            divisor = _NORMALIZE_DIVISORS[layout.component_type]
            return np.maximum(data.astype(np.float32) / np.float32(divisor), np.float32(-1.0))
        return data

    def _stride(self, view_index: int, layout: AccessorLayout) -> int:
        view = self.buffer_view(view_index)
        pointer = ptr("bufferViews", view_index)
        if "byteStride" not in view:
            return layout.element_size
        stride = get_int(view, "byteStride", pointer, minimum=4, maximum=252)
        if stride % 4 or stride < layout.element_size:
            raise GltfPackageError(
                "buffer_view_invalid",
                f"byteStride {stride} must be a multiple of 4 and >= the element size "
                f"{layout.element_size}",
                pointer + "/byteStride",
            )
        return stride

    def _strided(
        self,
        view_index: int,
        offset: int,
        stride: int,
        count: int,
        layout: AccessorLayout,
        pointer: str,
    ) -> npt.NDArray[Any]:
        view = self.buffer_view_bytes(view_index)
        end = offset + stride * (count - 1) + layout.element_size
        if end > len(view):
            raise GltfPackageError(
                "accessor_out_of_bounds",
                f"accessor needs bytes {offset}..{end} of bufferView {view_index}, "
                f"which has {len(view)}",
                pointer,
            )
        arr: npt.NDArray[Any] = np.ndarray(
            shape=(count, layout.columns, layout.rows),
            dtype=layout.dtype,
            buffer=view,
            offset=offset,
            strides=(stride, layout.column_stride, layout.dtype.itemsize),
        )
        return np.array(arr).reshape(count, layout.components)

    def _apply_sparse(
        self,
        data: npt.NDArray[Any],
        sparse: Any,
        count: int,
        layout: AccessorLayout,
        pointer: str,
    ) -> None:
        if not isinstance(sparse, dict):
            raise GltfPackageError("accessor_invalid", "sparse must be an object", pointer)
        n = get_int(sparse, "count", pointer, minimum=1, maximum=count)
        indices = sparse.get("indices")
        values = sparse.get("values")
        if not isinstance(indices, dict) or not isinstance(values, dict):
            raise GltfPackageError(
                "accessor_invalid", "sparse needs indices and values objects", pointer
            )
        ip = pointer + "/indices"
        index_type = indices.get("componentType")
        if index_type not in _SPARSE_INDEX_TYPES:
            raise GltfPackageError(
                "accessor_invalid",
                f"sparse index componentType {index_type!r} is not valid",
                ip + "/componentType",
            )
        index_layout = accessor_layout({"componentType": index_type, "type": "SCALAR"}, ip)
        idx = self._strided(
            get_int(indices, "bufferView", ip),
            get_int(indices, "byteOffset", ip, default=0),
            index_layout.element_size,
            n,
            index_layout,
            ip,
        ).reshape(n)
        if n > 1 and not bool(np.all(idx[1:] > idx[:-1])):
            raise GltfPackageError(
                "accessor_invalid", "sparse indices must be strictly increasing", ip
            )
        if int(idx[-1]) >= count:
            raise GltfPackageError(
                "accessor_invalid", f"sparse index {int(idx[-1])} >= count {count}", ip
            )
        vp = pointer + "/values"
        vals = self._strided(
            get_int(values, "bufferView", vp),
            get_int(values, "byteOffset", vp, default=0),
            layout.element_size,
            n,
            layout,
            vp,
        )
        data[idx.astype(np.int64)] = vals
