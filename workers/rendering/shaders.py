"""GLSL 3.30 sources for the scene pass and the RGB -> I420 pass."""

SCENE_VS = """
uniform mat4 u_view_proj;
uniform mat4 u_model;
uniform mat3 u_normal_mat;
in vec3 in_pos;
in vec3 in_normal;
in vec2 in_uv;
in vec4 in_color;
in vec2 in_uv1;
out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv0;
out vec2 v_uv1;
out vec4 v_color;
#ifdef SH_VERTEX
uniform vec3 u_sh[9];
out vec3 v_irr;
#endif
void main() {
    vec4 w = u_model * vec4(in_pos, 1.0);
    v_world = w.xyz;
    v_normal = u_normal_mat * in_normal;
    v_uv0 = in_uv;
    v_uv1 = in_uv1;
    v_color = in_color;
#ifdef SH_VERTEX
    vec3 N = normalize(v_normal);
    v_irr = max(SH_IRRADIANCE, 0.0);
#endif
    gl_Position = u_view_proj * w;
}
"""

# Diffuse image-based light: irradiance / pi from nine SH coefficients at the normal N.
SH_IRRADIANCE = (
    "(u_sh[0] + u_sh[1] * N.y + u_sh[2] * N.z + u_sh[3] * N.x + u_sh[4] * (N.x * N.y)"
    " + u_sh[5] * (N.y * N.z) + u_sh[6] * (3.0 * N.z * N.z - 1.0) + u_sh[7] * (N.x * N.z)"
    " + u_sh[8] * (N.x * N.x - N.y * N.y))"
)


def scene_vs(*, sh_per_vertex: bool = False) -> str:
    """The scene vertex shader; ``sh_per_vertex`` evaluates the diffuse IBL here (see
    ``scene_fs``)."""
    defines = f"#define SH_VERTEX\n#define SH_IRRADIANCE {SH_IRRADIANCE}\n" if sh_per_vertex else ""
    return "#version 330\n" + defines + SCENE_VS


# The glTF 2.0 metallic-roughness model (spec appendix B): Lambert diffuse c_diff / pi, GGX
# distribution, Smith height-correlated visibility, Schlick Fresnel; KHR_lights_punctual
# lights; image-based lighting by the split sum (ibl.py: prefiltered specular cube mips,
# irradiance as spherical harmonics, the BRDF LUT); Khronos PBR Neutral tone mapping, then
# the sRGB curve.
#
# Everything a material may or may not have is a compile-time variant (see ``scene_fs``), not
# a uniform branch: llvmpipe, where the fragment shader is the frame time, runs both sides of
# a branch for every fragment, and a shader that may ``discard`` turns off early depth testing
# for every draw that uses it. A texture's UV expression (set 0 or 1, KHR_texture_transform or
# not) is spliced in per variant too. sRGB textures (base colour, emissive) are decoded by the
# texture format (SRGB8_ALPHA8), for free in the sampler.
SCENE_FS = """
uniform vec4 u_base_color;
uniform vec3 u_emissive;
uniform float u_metallic;
uniform float u_roughness;
uniform float u_f0;
uniform vec3 u_spec_color;   // KHR_materials_specular colour (dielectric F0 tint)
uniform float u_spec_weight; // KHR_materials_specular factor (dielectric F0 and F90)
uniform float u_normal_scale;
uniform float u_occlusion_strength;
uniform float u_alpha_cutoff;
uniform float u_clearcoat;
uniform float u_clearcoat_roughness;
uniform vec3 u_cam_pos;
uniform float u_env_intensity;
uniform float u_exposure;
uniform samplerCube u_spec_env;
#ifdef SH_VERTEX
in vec3 v_irr;  // irradiance / pi, evaluated per vertex
#else
uniform vec3 u_sh[9];  // irradiance / pi as order-2 spherical harmonics (ibl.irradiance_sh)
#endif
uniform sampler2D u_brdf_lut;
uniform sampler2D u_base_tex;
uniform sampler2D u_mr_tex;
uniform sampler2D u_normal_tex;
uniform sampler2D u_occ_tex;
uniform sampler2D u_emis_tex;
uniform mat3 u_base_xf;
uniform mat3 u_mr_xf;
uniform mat3 u_normal_xf;
uniform mat3 u_occ_xf;
uniform mat3 u_emis_xf;
#if N_DIR > 0
uniform vec3 u_dir_dir[N_DIR];      // towards the light
uniform vec3 u_dir_color[N_DIR];    // colour * intensity
#endif
#if N_POINT > 0
uniform vec3 u_pt_pos[N_POINT];
uniform vec3 u_pt_color[N_POINT];
uniform float u_pt_inv_range[N_POINT];  // 0: infinite
#endif
#if N_SPOT > 0
uniform vec3 u_sp_pos[N_SPOT];
uniform vec3 u_sp_dir[N_SPOT];       // the way the spot shines
uniform vec3 u_sp_color[N_SPOT];
uniform float u_sp_inv_range[N_SPOT];
uniform vec2 u_sp_cone[N_SPOT];      // (scale, offset) of the angular falloff
#endif
in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv0;
in vec2 v_uv1;
in vec4 v_color;
out vec4 f_color;

const float PI = 3.14159265;

#ifdef NORMAL_TEX
vec3 perturb(vec3 N, vec2 uv) {
    // Tangent frame from screen-space derivatives (no TANGENT attribute needed): T and B are
    // the surface gradients of u and v, each times sigma = dot(N, cross(dp1, dp2)). Gradients
    // need no handedness sign: a mirrored UV island has mirrored gradients, which is what its
    // normal map was baked for (a det(duv) sign here makes ordinary and mirrored islands bend
    // opposite ways: one of them is always wrong). sigma's sign is the screen's: N faces the
    // viewer (flipped on back faces above), and the projection's Y flip (renderer.py) makes
    // cross(dFdx, dFdy) point away from the viewer, so sigma < 0 and s = -1 makes T, B the
    // gradients. On a back face the whole
    // perturbed normal is the front side's negated (as the Khronos viewer and three.js do):
    // N is already negated, so T and B are negated too.
    vec3 dp1 = dFdx(v_world);
    vec3 dp2 = dFdy(v_world);
    vec2 duv1 = dFdx(uv);
    vec2 duv2 = dFdy(uv);
    vec3 dp2perp = cross(dp2, N);
    vec3 dp1perp = cross(N, dp1);
    float s = gl_FrontFacing ? -1.0 : 1.0;
    vec3 T = (dp2perp * duv1.x + dp1perp * duv2.x) * s;
    vec3 B = (dp2perp * duv1.y + dp1perp * duv2.y) * s;
    float len2 = max(max(dot(T, T), dot(B, B)), 1e-30);
    float inv = inversesqrt(len2);
    vec3 m = texture(u_normal_tex, uv).xyz * 2.0 - 1.0;
    // glTF's v axis points down the image while normal maps store +Y up.
    m.xy *= vec2(u_normal_scale, -u_normal_scale);
    return normalize(mat3(T * inv, B * inv, N) * m);
}
#endif

#ifndef UNLIT
// One light's contribution: radiance * NdotL * (f_diffuse + f_specular), spec appendix B.
vec3 shade(vec3 L, vec3 radiance, vec3 N, vec3 V, float NdotV, vec3 f0, vec3 f90, vec3 c_diff,
           float a2) {
    vec3 H = normalize(L + V);
    float NdotL = clamp(dot(N, L), 0.0, 1.0);
    float NdotH = clamp(dot(N, H), 0.0, 1.0);
    float VdotH = clamp(dot(V, H), 0.0, 1.0);
    float x = 1.0 - VdotH;
    float x2 = x * x;
    vec3 F = f0 + (f90 - f0) * (x2 * x2 * x);
    float den = NdotL * sqrt(NdotV * NdotV * (1.0 - a2) + a2)
              + NdotV * sqrt(NdotL * NdotL * (1.0 - a2) + a2);
    float vis = den > 0.0 ? 0.5 / den : 0.0;
    float d = NdotH * NdotH * (a2 - 1.0) + 1.0;
    float D = a2 / (PI * d * d);
    return radiance * NdotL * ((1.0 - F) * c_diff / PI + F * (vis * D));
}
#endif

vec3 pbr_neutral(vec3 color) {
    // Khronos PBR Neutral tone mapping (github.com/KhronosGroup/ToneMapping).
    const float start = 0.8 - 0.04;
    const float desat = 0.15;
    float x = min(color.r, min(color.g, color.b));
    float offset = x < 0.08 ? x - 6.25 * x * x : 0.04;
    color -= offset;
    float peak = max(color.r, max(color.g, color.b));
    if (peak < start) return color;
    const float dd = 1.0 - start;
    float new_peak = 1.0 - dd * dd / (peak + dd - start);
    color *= new_peak / peak;
    float g = 1.0 - 1.0 / (desat * (peak - new_peak) + 1.0);
    return mix(color, vec3(new_peak), g);
}

vec3 srgb_encode(vec3 c) {
    // The sRGB curve's power segment, 1.055 c^(1/2.4) - 0.055, as a quartic in sqrt(c) (a
    // minimax fit, within 0.2 / 255 of the exact curve on [0.0031308, 1]): on llvmpipe pow is
    // a log2 and an exp2 per channel, several times the cost of a sqrt and four multiply-adds.
    c = clamp(c, 0.0, 1.0);
    vec3 t = sqrt(c);
    vec3 p = (((-0.30928045 * t + 0.84209211) * t - 0.94431933) * t + 1.44774891) * t - 0.03699329;
    return mix(c * 12.92, p, step(0.0031308, c));
}

void main() {
    vec4 base = u_base_color * v_color;
#ifdef BASE_TEX
    base *= texture(u_base_tex, UV_BASE);
#endif
#ifdef ALPHA_MASK
    if (base.a < u_alpha_cutoff) discard;
#endif
#ifdef UNLIT
    vec3 color = base.rgb;
#else
    vec3 N = normalize(v_normal);
    if (!gl_FrontFacing) N = -N;
#ifdef NORMAL_TEX
    N = perturb(N, UV_NORMAL);
#endif
    float metal = u_metallic;
    float rough = u_roughness;
#ifdef MR_TEX
    vec4 mr = texture(u_mr_tex, UV_MR);
    rough *= mr.g;
    metal *= mr.b;
#endif
    rough = clamp(rough, 0.0, 1.0);
    metal = clamp(metal, 0.0, 1.0);
    vec3 V = normalize(u_cam_pos - v_world);
    float NdotV = clamp(abs(dot(N, V)), 0.001, 1.0);
    vec3 f0_d = min(u_f0 * u_spec_color, vec3(1.0)) * u_spec_weight;  // the dielectric's F0
    vec3 f0 = mix(f0_d, base.rgb, metal);
    vec3 f90 = vec3(mix(u_spec_weight, 1.0, metal));
    vec3 c_diff = base.rgb * (1.0 - metal);
    float a = max(rough * rough, 0.002);
    float a2 = a * a;
    vec3 color = vec3(0.0);
#ifdef CLEARCOAT
    // KHR_materials_clearcoat (factors): a dielectric GGX layer on the geometric normal over
    // the base, which it dims by its Fresnel (spec's layering: base * (1 - cc * Fc) + cc).
    vec3 Ncc = normalize(v_normal);
    if (!gl_FrontFacing) Ncc = -Ncc;
    float cc_NdotV = clamp(abs(dot(Ncc, V)), 0.001, 1.0);
    float cc_rough = clamp(u_clearcoat_roughness, 0.0, 1.0);
    float cc_a = max(cc_rough * cc_rough, 0.002);
    float cc_a2 = cc_a * cc_a;
    vec3 cc_color = vec3(0.0);
#define LIGHT(L, rad) { vec3 l_ = L; vec3 r_ = rad; \
    color += shade(l_, r_, N, V, NdotV, f0, f90, c_diff, a2); \
    cc_color += shade(l_, r_, Ncc, V, cc_NdotV, vec3(0.04), vec3(1.0), vec3(0.0), cc_a2); }
#else
#define LIGHT(L, rad) color += shade(L, rad, N, V, NdotV, f0, f90, c_diff, a2)
#endif
#if N_DIR > 0
    for (int i = 0; i < N_DIR; i++)
        LIGHT(u_dir_dir[i], u_dir_color[i]);
#endif
#if N_POINT > 0
    for (int i = 0; i < N_POINT; i++) {
        vec3 Lv = u_pt_pos[i] - v_world;
        float dist2 = max(dot(Lv, Lv), 1e-8);
        float r = dist2 * u_pt_inv_range[i] * u_pt_inv_range[i];
        float att = clamp(1.0 - r * r, 0.0, 1.0) / dist2;
        LIGHT(Lv * inversesqrt(dist2), u_pt_color[i] * att);
    }
#endif
#if N_SPOT > 0
    for (int i = 0; i < N_SPOT; i++) {
        vec3 Lv = u_sp_pos[i] - v_world;
        float dist2 = max(dot(Lv, Lv), 1e-8);
        vec3 L = Lv * inversesqrt(dist2);
        float r = dist2 * u_sp_inv_range[i] * u_sp_inv_range[i];
        float att = clamp(1.0 - r * r, 0.0, 1.0) / dist2;
        float cone = clamp(dot(u_sp_dir[i], -L) * u_sp_cone[i].x + u_sp_cone[i].y, 0.0, 1.0);
        LIGHT(L, u_sp_color[i] * (att * cone * cone));
    }
#endif
    // Image-based lighting: the split sum (single scattering, the Khronos viewer's
    // roughness-dependent Fresnel k_s) plus Fdez-Aguera's multiple-scattering term (JCGT 2019),
    // as three.js and the Khronos viewer add it: the single-scattering GGX lobe loses the
    // energy of light bouncing more than once between microfacets (1 - A - B of the LUT), up to
    // half of a rough metal's reflection. The lost energy comes back tinted by the average
    // Fresnel, lit by the irradiance (three.js), and the dielectric's diffuse keeps only what its
    // specular does not reflect (the spec's fresnel_mix, three.js). Costs a few ALU operations
    // on the LUT values already fetched.
    vec2 ab = texture(u_brdf_lut, vec2(NdotV, rough)).rg;
    float y = 1.0 - NdotV;
    float y2 = y * y;
    float fres = y2 * y2 * y;
    float f_rough = 1.0 - rough;
    vec3 ss = (f0 + (max(f90 * f_rough, f0) - f0) * fres) * ab.x + f90 * ab.y;
    float e_ms = 1.0 - ab.x - ab.y;
    vec3 f_avg = f0 + (1.0 - f0) * (1.0 / 21.0);
    vec3 ms = ss * f_avg * e_ms / (1.0 - e_ms * f_avg);
    vec3 ss_d = (f0_d + (max(f90 * f_rough, f0_d) - f0_d) * fres) * ab.x + f90 * ab.y;
    vec3 f_avg_d = f0_d + (1.0 - f0_d) * (1.0 / 21.0);
    vec3 ms_d = ss_d * f_avg_d * e_ms / (1.0 - e_ms * f_avg_d);
    vec3 R = reflect(-V, N);
    vec3 spec = textureLod(u_spec_env, R, rough * SPEC_LOD_MAX).rgb * ss;
#ifdef SH_VERTEX
    vec3 irr = v_irr;
#else
    vec3 irr = max(SH_IRRADIANCE, 0.0);
#endif
    vec3 diff = irr * (c_diff * (1.0 - ss_d - ms_d) + ms);
    vec3 ibl = (diff + spec) * u_env_intensity;
#ifdef OCC_TEX
    ibl *= 1.0 + u_occlusion_strength * (texture(u_occ_tex, UV_OCC).r - 1.0);
#endif
    color += ibl;
#ifdef EMIS_TEX
    color += u_emissive * texture(u_emis_tex, UV_EMIS).rgb;
#else
    color += u_emissive;
#endif
#ifdef CLEARCOAT
    vec2 cc_ab = texture(u_brdf_lut, vec2(cc_NdotV, cc_rough)).rg;
    vec3 cc_R = reflect(-V, Ncc);
    cc_color += textureLod(u_spec_env, cc_R, cc_rough * SPEC_LOD_MAX).rgb
              * ((0.04 * cc_ab.x + cc_ab.y) * u_env_intensity);
    float cc_y = 1.0 - cc_NdotV;
    float cc_y2 = cc_y * cc_y;
    float cc_F = 0.04 + 0.96 * (cc_y2 * cc_y2 * cc_y);
    color = color * (1.0 - u_clearcoat * cc_F) + u_clearcoat * cc_color;
#endif
#endif
    f_color = vec4(srgb_encode(pbr_neutral(color * u_exposure)), base.a);
}
"""

# Texture slots of a material: (define, uniform prefix); order matches ShaderVariant.uvs.
TEXTURE_SLOTS = (
    ("BASE", "base"),
    ("MR", "mr"),
    ("NORMAL", "normal"),
    ("OCC", "occ"),
    ("EMIS", "emis"),
)


def uv_expression(prefix: str, uv: str) -> str:
    """GLSL for one texture's coordinates. ``uv`` is "0"/"1" (set) or "t0"/"t1" (transformed)."""
    src = "v_uv1" if uv.endswith("1") else "v_uv0"
    if uv.startswith("t"):
        return f"(u_{prefix}_xf * vec3({src}, 1.0)).xy"
    return src


def scene_fs(
    *,
    uvs: tuple[str | None, ...] = (None, None, None, None, None),
    alpha_mask: bool = False,
    unlit: bool = False,
    clearcoat: bool = False,
    lights: tuple[int, int, int] = (0, 0, 0),
    spec_lod_max: int = 4,
    normal_map: bool | None = None,
    sh_per_vertex: bool = False,
) -> str:
    """The scene fragment shader specialised for one material variant.

    ``uvs`` holds, per TEXTURE_SLOTS entry, None (no texture) or its UV expression code;
    ``lights`` the (directional, point, spot) counts. ``sh_per_vertex`` takes the diffuse IBL
    from the vertex shader: irradiance is smooth, and per fragment its nine SH terms cost
    about a sixth of the frame on llvmpipe; per-fragment is kept where the shading normal is
    not the vertex normal's interpolation (normal maps, back faces of double-sided surfaces).
    ``normal_map`` is a shorthand for a normal texture on UV set 0 (older callers).
    """
    if normal_map:
        uvs = (uvs[0], uvs[1], "0", uvs[3], uvs[4])
    lines = [
        "#define SH_VERTEX" if sh_per_vertex else f"#define SH_IRRADIANCE {SH_IRRADIANCE}",
        f"#define N_DIR {lights[0]}",
        f"#define N_POINT {lights[1]}",
        f"#define N_SPOT {lights[2]}",
        f"#define SPEC_LOD_MAX {float(spec_lod_max):.1f}",
    ]
    for (define, prefix), uv in zip(TEXTURE_SLOTS, uvs, strict=True):
        if uv is not None:
            lines.append(f"#define {define}_TEX")
            lines.append(f"#define UV_{define} {uv_expression(prefix, uv)}")
    if alpha_mask:
        lines.append("#define ALPHA_MASK")
    if unlit:
        lines.append("#define UNLIT")
    if clearcoat:
        lines.append("#define CLEARCOAT")
    return "#version 330\n" + "\n".join(lines) + "\n" + SCENE_FS


FULLSCREEN_VS = """
#version 330
void main() {
    // One triangle covering the viewport.
    vec2 p = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    gl_Position = vec4(p, 0.0, 1.0);
}
"""

# The RGB -> I420 conversion writes the I420 bytes (Y plane, then U, then V, BT.601 limited
# range) into an RGBA8 target whose memory is exactly the contiguous I420 buffer: texel t holds
# bytes 4t .. 4t+3. It runs as two passes over two viewports of that target (the Y rows, then
# the chroma rows), so neither pays for the other's branch (llvmpipe runs both sides of a
# branch: one pass with both paths cost about twice as much there).
# The Y plane needs width % 4 == 0; chroma takes a fast path when (width / 2) % 4 == 0 (four
# neighbours in one chroma row) and a per-byte path otherwise.
I420_Y_FS = """
#version 330
uniform sampler2D u_src;
out vec4 f_out;
const vec3 KY = vec3(65.481, 128.553, 24.966);
void main() {
    // Texel (x, y) holds the luma of pixels 4x .. 4x+3 of row y.
    ivec2 o = ivec2(gl_FragCoord.xy);
    int x = o.x * 4;
    mat4x3 c = mat4x3(
        texelFetch(u_src, ivec2(x, o.y), 0).rgb,
        texelFetch(u_src, ivec2(x + 1, o.y), 0).rgb,
        texelFetch(u_src, ivec2(x + 2, o.y), 0).rgb,
        texelFetch(u_src, ivec2(x + 3, o.y), 0).rgb);
    f_out = (vec4(16.0) + KY * c) / 255.0;
}
"""

I420_UV_FS = """
#version 330
uniform sampler2D u_src;
uniform int u_w;
uniform int u_h;
uniform int u_tw;
out vec4 f_out;

const vec3 KU = vec3(-37.797, -74.203, 112.0);
const vec3 KV = vec3(112.0, -93.786, -18.214);

float chroma(int j, int cw, int csize) {
    bool is_v = j >= csize;
    if (is_v) j -= csize;
    vec2 p = vec2(float(j % cw) * 2.0 + 1.0, float(j / cw) * 2.0 + 1.0) / vec2(u_w, u_h);
    vec3 c = texture(u_src, p).rgb;
    return (128.0 + dot(is_v ? KV : KU, c)) / 255.0;
}

void main() {
    ivec2 o = ivec2(gl_FragCoord.xy);
    int cw = u_w / 2;
    int csize = cw * (u_h / 2);
    int j = ((o.y - u_h) * u_tw + o.x) * 4;
#ifdef CHROMA_FAST
    // Four neighbours in one chroma row of one plane; each is the mean of a 2x2 block (one
    // bilinear fetch at the block centre).
    bool is_v = j >= csize;
    if (is_v) j -= csize;
    float row = float(j / cw) * 2.0 + 1.0;
    float col = float(j % cw) * 2.0 + 1.0;
    vec2 inv = 1.0 / vec2(u_w, u_h);
    mat4x3 c = mat4x3(
        texture(u_src, vec2(col, row) * inv).rgb,
        texture(u_src, vec2(col + 2.0, row) * inv).rgb,
        texture(u_src, vec2(col + 4.0, row) * inv).rgb,
        texture(u_src, vec2(col + 6.0, row) * inv).rgb);
    f_out = (vec4(128.0) + (is_v ? KV : KU) * c) / 255.0;
#else
    f_out = vec4(chroma(j, cw, csize), chroma(j + 1, cw, csize), chroma(j + 2, cw, csize),
                 chroma(j + 3, cw, csize));
#endif
}
"""


def i420_uv_fs(*, fast: bool) -> str:
    define = "#define CHROMA_FAST\n" if fast else ""
    return I420_UV_FS.replace("#version 330\n", "#version 330\n" + define, 1)
