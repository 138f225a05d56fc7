"""GLSL 3.30 sources for the scene pass and the RGB -> I420 pass."""

SCENE_VS = """
#version 330
uniform mat4 u_view_proj;
uniform mat4 u_model;
uniform mat3 u_normal_mat;
in vec3 in_pos;
in vec3 in_normal;
in vec2 in_uv;
in vec4 in_color;
out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv;
out vec4 v_color;
void main() {
    vec4 w = u_model * vec4(in_pos, 1.0);
    v_world = w.xyz;
    v_normal = u_normal_mat * in_normal;
    v_uv = in_uv;
    v_color = in_color;
    gl_Position = u_view_proj * w;
}
"""

# Shading: Lambert + normalised Blinn-Phong driven by the metallic-roughness factors, one
# directional light plus ambient. Gamma 2.0 (square / sqrt) instead of the sRGB curve: it is
# visually close and much cheaper on llvmpipe, where the fragment shader is the frame time.
# Normal mapping and alpha testing are compile-time variants (see ``scene_fs``), not uniform
# branches: llvmpipe runs both sides of a branch for every fragment, and a shader that may
# ``discard`` turns off early depth testing for every draw that uses it.
SCENE_FS = """
uniform sampler2D u_base_tex;
uniform sampler2D u_normal_tex;
uniform vec4 u_base_color;
uniform vec3 u_emissive;
uniform float u_metallic;
uniform float u_roughness;
uniform float u_normal_scale;
uniform float u_alpha_cutoff;
uniform vec3 u_cam_pos;
uniform vec3 u_light_dir;
uniform vec3 u_light_color;
uniform vec3 u_ambient;
in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv;
in vec4 v_color;
out vec4 f_color;

#ifdef NORMAL_MAP
vec3 perturb(vec3 N) {
    // Tangent frame from screen-space derivatives (no TANGENT attribute needed).
    vec3 dp1 = dFdx(v_world);
    vec3 dp2 = dFdy(v_world);
    vec2 duv1 = dFdx(v_uv);
    vec2 duv2 = dFdy(v_uv);
    vec3 dp2perp = cross(dp2, N);
    vec3 dp1perp = cross(N, dp1);
    float det = duv1.x * duv2.y - duv1.y * duv2.x;
    float s = det < 0.0 ? -1.0 : 1.0;
    vec3 T = (dp2perp * duv1.x + dp1perp * duv2.x) * s;
    vec3 B = (dp2perp * duv1.y + dp1perp * duv2.y) * s;
    float len2 = max(max(dot(T, T), dot(B, B)), 1e-30);
    float inv = inversesqrt(len2);
    vec3 m = texture(u_normal_tex, v_uv).xyz * 2.0 - 1.0;
    // glTF's v axis points down the image while normal maps store +Y up.
    m.xy *= vec2(u_normal_scale, -u_normal_scale);
    return normalize(mat3(T * inv, B * inv, N) * m);
}
#endif

void main() {
    vec4 tex = texture(u_base_tex, v_uv);
    vec4 base = u_base_color * v_color * vec4(tex.rgb * tex.rgb, tex.a);
#ifdef ALPHA_MASK
    if (base.a < u_alpha_cutoff) discard;
#endif
    vec3 N = normalize(v_normal);
    if (!gl_FrontFacing) N = -N;
#ifdef NORMAL_MAP
    N = perturb(N);
#endif
    vec3 V = normalize(u_cam_pos - v_world);
    vec3 H = normalize(u_light_dir + V);
    float ndl = max(dot(N, u_light_dir), 0.0);
    float ndh = max(dot(N, H), 0.0);
    float r = clamp(u_roughness, 0.05, 1.0);
    float shin = clamp(2.0 / (r * r * r * r) - 2.0, 1.0, 2048.0);
    vec3 f0 = mix(vec3(0.04), base.rgb, u_metallic);
    vec3 diffuse = base.rgb * (1.0 - u_metallic);
    vec3 spec = f0 * (pow(ndh, shin) * (shin + 8.0) * 0.0398);
    vec3 c = u_ambient * (diffuse + f0) + u_light_color * ndl * (diffuse + spec) + u_emissive;
    f_color = vec4(sqrt(clamp(c, 0.0, 1.0)), base.a);
}
"""


def scene_fs(*, normal_map: bool, alpha_mask: bool) -> str:
    """The scene fragment shader specialised for one material variant."""
    defines = "".join(
        f"#define {name}\n"
        for name, on in (("NORMAL_MAP", normal_map), ("ALPHA_MASK", alpha_mask))
        if on
    )
    return "#version 330\n" + defines + SCENE_FS


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
