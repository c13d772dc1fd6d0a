/* synth.c: the synthetic domain-shift benchmark. Street scenes with a perspective road,
 * sidewalks, façades receding to a vanishing point, sky, verges, and far-to-near objects
 * (cars, people, poles with signs and lights, trees) rendered into an RGB image and a
 * Cityscapes labelId map together.
 *
 * Source and target draw their layouts from the same distribution; they differ only in
 * appearance, and strongly: the class palettes are permuted between domains (target road
 * is olive like source terrain, target buildings blue like source sky, target sky beige
 * like source sidewalk, ...), textures differ (window grids vs floor bands, dashed white
 * vs solid yellow lane marks, paving tiles vs plain), and the target adds a lighting
 * gradient, sensor noise, blur, an ego-vehicle hood (labelId 1, ignored) and a different
 * object scale. A model that relies on colour fails on the target; one trained there
 * learns it easily. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

enum {
    ID_EGO = 1, ID_ROAD = 7, ID_SIDEWALK = 8, ID_BUILDING = 11, ID_WALL = 12, ID_FENCE = 13,
    ID_POLE = 17, ID_LIGHT = 19, ID_SIGN = 20, ID_VEG = 21, ID_TERRAIN = 22, ID_SKY = 23,
    ID_PERSON = 24, ID_CAR = 26,
};

typedef uint8_t rgb_t[3];

struct style {
    rgb_t sky_top, sky_bot, cloud, distant, road, lane, sidewalk, tile, terrain, veg, fence, wall,
        pole, sign, light, skin, window, wheel, car_window, ego;
    rgb_t buildings[4], cars[6], cloth[5];
    int   nbuildings, ncars, ncloth;
    bool  windows_grid;   /* source: window grid; target: floor bands and slits */
    bool  lane_dashed, tiles, clouds;
    float tex_amp;        /* texture contrast */
    float pixel_noise;    /* sensor noise sigma */
    float blur;           /* gaussian blur sigma (0: none) */
    float light_grad;     /* left-right lighting gradient amplitude */
    float car_scale, person_scale;
    float ego_p;          /* probability of an ego-vehicle hood */
};

static const struct style styles[2] = {
    [SEG_SYNTH_SOURCE] = {
        .sky_top = {80, 140, 225}, .sky_bot = {165, 200, 240}, .cloud = {245, 245, 250},
        .distant = {140, 140, 160}, .road = {85, 85, 90}, .lane = {235, 235, 235},
        .sidewalk = {180, 165, 150}, .tile = {145, 130, 120}, .terrain = {135, 170, 80},
        .veg = {50, 125, 45}, .fence = {150, 115, 80}, .wall = {165, 155, 145},
        .pole = {120, 120, 125}, .sign = {210, 35, 35}, .light = {35, 35, 35},
        .skin = {225, 185, 155}, .window = {45, 55, 85}, .wheel = {20, 20, 20},
        .car_window = {40, 50, 65}, .ego = {0, 0, 0},
        .buildings = {{150, 80, 60}, {185, 160, 130}, {125, 120, 120}, {170, 110, 90}},
        .nbuildings = 4,
        .cars = {{200, 30, 30}, {30, 60, 180}, {230, 230, 230}, {20, 20, 20}, {240, 190, 30}, {60, 140, 60}},
        .ncars = 6,
        .cloth = {{200, 40, 40}, {40, 80, 200}, {230, 200, 40}, {40, 160, 70}, {140, 50, 160}},
        .ncloth = 5,
        .windows_grid = true, .lane_dashed = true, .tiles = true, .clouds = true,
        .tex_amp = 14, .pixel_noise = 1.5f, .blur = 0, .light_grad = 0.05f,
        .car_scale = 1.0f, .person_scale = 1.0f, .ego_p = 0,
    },
    [SEG_SYNTH_TARGET] = {
        .sky_top = {200, 195, 180}, .sky_bot = {228, 222, 205}, .cloud = {210, 205, 195},
        .distant = {120, 130, 100}, .road = {110, 135, 80}, .lane = {225, 190, 60},
        .sidewalk = {155, 85, 95}, .tile = {155, 85, 95}, .terrain = {95, 95, 100},
        .veg = {150, 90, 150}, .fence = {230, 230, 230}, .wall = {90, 80, 60},
        .pole = {230, 200, 40}, .sign = {40, 90, 210}, .light = {200, 200, 200},
        .skin = {200, 160, 130}, .window = {205, 215, 225}, .wheel = {50, 45, 40},
        .car_window = {170, 185, 200}, .ego = {45, 45, 50},
        .buildings = {{70, 105, 140}, {90, 120, 155}, {60, 90, 115}, {80, 110, 130}},
        .nbuildings = 4,
        .cars = {{150, 150, 155}, {60, 60, 65}, {110, 30, 30}, {40, 50, 90}, {210, 210, 215}, {95, 85, 70}},
        .ncars = 6,
        .cloth = {{60, 60, 60}, {90, 70, 50}, {50, 60, 90}, {120, 120, 120}, {70, 40, 40}},
        .ncloth = 5,
        .windows_grid = false, .lane_dashed = false, .tiles = false, .clouds = false,
        .tex_amp = 22, .pixel_noise = 7.0f, .blur = 0.8f, .light_grad = 0.25f,
        .car_scale = 1.3f, .person_scale = 0.8f, .ego_p = 0.7f,
    },
};

struct scene {
    int                 w, h;
    const struct style *st;
    uint64_t            tex;          /* texture seed */
    float               yh, xv;       /* horizon row, vanishing point column */
    float               road0[2], road_top[2];   /* road edges at the bottom / horizon */
    float               side0[2], side_top[2];   /* sidewalk outer edges */
    uint8_t            *rgb, *ids;
    float               bright;       /* per-image brightness */
};

/* ---- noise ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float hash01(uint64_t seed, int x, int y)
{
    uint64_t h = mix64(seed ^ ((uint64_t)(uint32_t)x * 0x9e3779b97f4a7c15ull) ^
                       ((uint64_t)(uint32_t)y * 0xc2b2ae3d27d4eb4full));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* Value noise in [0, 1). */
static float vnoise(uint64_t seed, float x, float y)
{
    float fx0 = floorf(x), fy0 = floorf(y);
    int xi = (int)fx0, yi = (int)fy0;
    float fx = x - fx0, fy = y - fy0;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    float a = hash01(seed, xi, yi), b = hash01(seed, xi + 1, yi);
    float c = hash01(seed, xi, yi + 1), d = hash01(seed, xi + 1, yi + 1);
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
}

static float fbm(uint64_t seed, float x, float y)
{
    return 0.6f * vnoise(seed, x, y) + 0.3f * vnoise(seed + 1, 2.1f * x, 2.1f * y) +
           0.1f * vnoise(seed + 2, 4.3f * x, 4.3f * y);
}

/* ---- painting ---- */

static void paint(struct scene *s, int x, int y, int id, const rgb_t c, float shade)
{
    if (x < 0 || y < 0 || x >= s->w || y >= s->h)
        return;
    size_t i = (size_t)y * s->w + x;
    s->ids[i] = (uint8_t)id;
    for (int k = 0; k < 3; k++)
        s->rgb[3 * i + k] = seg_clamp_u8(c[k] * shade);
}

static void paint_tex(struct scene *s, int x, int y, int id, const rgb_t c, uint64_t salt, float freq)
{
    float n = fbm(s->tex + salt, x * freq / s->h, y * freq / s->h) - 0.5f;
    float shade = 1.0f + 2.0f * n * s->st->tex_amp / 128.0f;
    paint(s, x, y, id, c, shade);
}

static float lerp(float a, float b, float t)
{
    return a + (b - a) * t;
}

/* x of a ground line at row y (lines meet the horizon at x_top). */
static float line_x(const struct scene *s, float x0, float x_top, float y)
{
    return lerp(x_top, x0, (y - s->yh) / (s->h - s->yh));
}

/* depth factor of a ground row: 0 at the horizon, 1 at the bottom */
static float depth_of(const struct scene *s, float y)
{
    float d = (y - s->yh) / (s->h - s->yh);
    return d < 0 ? 0 : d;
}

static void draw_sky(struct scene *s)
{
    const struct style *st = s->st;
    for (int y = 0; y < s->h; y++) {
        float t = (float)y / (s->yh > 1 ? s->yh : 1);
        if (t > 1)
            t = 1;
        rgb_t c;
        for (int k = 0; k < 3; k++)
            c[k] = (uint8_t)lerp(st->sky_top[k], st->sky_bot[k], t);
        for (int x = 0; x < s->w; x++) {
            paint(s, x, y, ID_SKY, c, 1.0f);
            if (st->clouds) {
                float n = fbm(s->tex + 11, 3.0f * x / s->h, 8.0f * y / s->h);
                if (n > 0.62f)
                    paint(s, x, y, ID_SKY, st->cloud, 1.0f - (0.7f - n));
            } else {
                paint_tex(s, x, y, ID_SKY, c, 12, 2.0f);
            }
        }
    }
}

static void draw_ground(struct scene *s, struct seg_data_rng *r)
{
    const struct style *st = s->st;
    int verge_id[2], verge_veg[2];
    for (int side = 0; side < 2; side++) {
        verge_veg[side] = seg_data_rng_uniform(r) < 0.35;
        verge_id[side] = verge_veg[side] ? ID_VEG : ID_TERRAIN;
    }
    /* distant city band along the horizon */
    float band = 0.04f + 0.05f * (float)seg_data_rng_uniform(r);
    for (int x = 0; x < s->w; x++) {
        float top = s->yh - s->h * band * (0.4f + 1.2f * vnoise(s->tex + 21, 6.0f * x / s->w, 0));
        for (int y = (int)floorf(top); y < (int)ceilf(s->yh); y++)
            paint_tex(s, x, y, ID_BUILDING, st->distant, 22, 20.0f);
    }
    int y0 = (int)ceilf(s->yh);
    for (int y = y0; y < s->h; y++) {
        float yc = y + 0.5f, d = depth_of(s, yc);
        float rl = line_x(s, s->road0[0], s->road_top[0], yc), rr = line_x(s, s->road0[1], s->road_top[1], yc);
        float sl = line_x(s, s->side0[0], s->side_top[0], yc), sr = line_x(s, s->side0[1], s->side_top[1], yc);
        for (int x = 0; x < s->w; x++) {
            float xc = x + 0.5f;
            if (xc >= rl && xc < rr) {
                /* lane mark along the middle, converging; dashes in perspective */
                float mid = 0.5f * (rl + rr), half = 0.012f * s->w * d + 0.3f;
                bool mark = fabsf(xc - mid) < half;
                if (mark && st->lane_dashed)
                    mark = fmodf(1.0f / (d + 0.05f), 1.2f) < 0.6f;
                if (mark)
                    paint(s, x, y, ID_ROAD, st->lane, 1.0f);
                else
                    paint_tex(s, x, y, ID_ROAD, st->road, 31, 14.0f);
            } else if (xc >= sl && xc < sr) {
                bool tile = false;
                if (st->tiles) {
                    float u = (xc < rl ? (rl - xc) : (xc - rr)) / (0.06f * s->w * d + 0.5f);
                    float v = 1.0f / (d + 0.05f);
                    tile = fmodf(u, 1.0f) < 0.15f || fmodf(v * 1.5f, 1.0f) < 0.12f;
                }
                paint_tex(s, x, y, ID_SIDEWALK, tile ? st->tile : st->sidewalk, 41, 10.0f);
            } else {
                int side = xc < s->xv ? 0 : 1;
                paint_tex(s, x, y, verge_id[side], verge_veg[side] ? st->veg : st->terrain, 51,
                          verge_veg[side] ? 40.0f : 12.0f);
            }
        }
    }
}

/* Façades on one side: segments receding to the vanishing point, some left as gaps. */
static void draw_facades(struct scene *s, struct seg_data_rng *r, int side)
{
    const struct style *st = s->st;
    float xt = s->side_top[side], x0 = s->side0[side];
    float q = 0.55f + 0.2f * (float)seg_data_rng_uniform(r);
    float frac = 0.0f; /* position along the side, 0 = image border, 1 = vanishing point */
    for (int seg = 0; seg < 12 && frac < 0.985f; seg++) {
        float nfrac = 1.0f - (1.0f - frac) * q;
        bool gap = seg_data_rng_uniform(r) < 0.22;
        float height = 0.5f + 1.1f * (float)seg_data_rng_uniform(r);   /* roof height at the border, in H */
        int floors = 3 + seg_data_rng_int(r, 5), cols = 3 + seg_data_rng_int(r, 4);
        const uint8_t *col = st->buildings[seg_data_rng_int(r, st->nbuildings)];
        bool wall_base = seg_data_rng_uniform(r) < 0.25;
        uint64_t salt = 100 + (uint64_t)seg * 7 + (uint64_t)side * 1000;
        if (!gap) {
            /* column range of this segment */
            float xa = side == 0 ? frac * xt : s->w - frac * (s->w - xt);
            float xb = side == 0 ? nfrac * xt : s->w - nfrac * (s->w - xt);
            if (xa > xb) {
                float t = xa;
                xa = xb;
                xb = t;
            }
            for (int x = (int)floorf(xa); x < (int)ceilf(xb); x++) {
                float xc = x + 0.5f;
                float t = side == 0 ? xc / xt : (s->w - xc) / (s->w - xt); /* 0 border .. 1 vp */
                if (t < 0 || t >= 1)
                    continue;
                /* ground: where the sidewalk's outer edge passes this column */
                float ground = s->yh + (xc - xt) * (s->h - s->yh) / (x0 - xt);
                if (ground > s->h)
                    ground = (float)s->h + 1;
                float roof_b = s->yh - height * s->h, roof = lerp(roof_b, s->yh - 0.02f * s->h, t);
                float u = -logf(1.0f - t) * cols * 1.7f;  /* columns compress towards the vp */
                for (int y = (int)floorf(roof); y < (int)ceilf(ground); y++) {
                    float v = (y + 0.5f - roof) / (ground - roof);
                    if (v < 0 || v > 1)
                        continue;
                    if (wall_base && v > 0.85f) {
                        paint_tex(s, x, y, ID_WALL, st->wall, salt + 3, 20.0f);
                        continue;
                    }
                    float fv = v * floors, fu = u;
                    bool win;
                    if (st->windows_grid)
                        win = fmodf(fu, 1.0f) > 0.3f && fmodf(fu, 1.0f) < 0.75f &&
                              fmodf(fv, 1.0f) > 0.3f && fmodf(fv, 1.0f) < 0.8f && v < 0.85f;
                    else
                        win = fmodf(fv, 1.0f) < 0.12f ||
                              (fmodf(fu * 2.0f, 1.0f) < 0.12f && fmodf(fv, 1.0f) > 0.3f);
                    paint_tex(s, x, y, ID_BUILDING, win ? st->window : col, salt, 25.0f);
                }
            }
        }
        frac = nfrac;
    }
}

struct object {
    float yb;   /* base row (sort key) */
    int   kind; /* 0 car, 1 person, 2 pole, 3 tree */
    float x;
    int   variant;
    int   color;
};

static int cmp_obj(const void *a, const void *b)
{
    float ya = ((const struct object *)a)->yb, yb = ((const struct object *)b)->yb;
    return ya < yb ? -1 : ya > yb;
}

static void fill_ellipse(struct scene *s, float cx, float cy, float rx, float ry, int id,
                         const rgb_t c, uint64_t salt, float freq)
{
    if (rx < 0.5f)
        rx = 0.5f;
    if (ry < 0.5f)
        ry = 0.5f;
    for (int y = (int)floorf(cy - ry); y <= (int)ceilf(cy + ry); y++)
        for (int x = (int)floorf(cx - rx); x <= (int)ceilf(cx + rx); x++) {
            float dx = (x + 0.5f - cx) / rx, dy = (y + 0.5f - cy) / ry;
            if (dx * dx + dy * dy <= 1.0f)
                paint_tex(s, x, y, id, c, salt, freq);
        }
}

static void fill_rect(struct scene *s, float x0, float y0, float x1, float y1, int id,
                      const rgb_t c, uint64_t salt, float freq)
{
    if (x1 - x0 < 1.0f) { /* at least one pixel wide */
        float m = 0.5f * (x0 + x1);
        x0 = m - 0.5f;
        x1 = m + 0.5f;
    }
    for (int y = (int)lroundf(y0); y < (int)lroundf(y1); y++)
        for (int x = (int)lroundf(x0); x < (int)lroundf(x1); x++)
            paint_tex(s, x, y, id, c, salt, freq);
}

static void draw_car(struct scene *s, const struct object *o)
{
    const struct style *st = s->st;
    float d = depth_of(s, o->yb), w = d * s->w * 0.30f * st->car_scale, h = w * 0.62f;
    if (w < 2)
        return;
    const uint8_t *body = st->cars[o->color % st->ncars];
    float x0 = o->x - w / 2, yb = o->yb;
    uint64_t salt = 300 + (uint64_t)o->color;
    /* cabin with slanted sides, then body, then wheels */
    for (int y = (int)lroundf(yb - h); y < (int)lroundf(yb - 0.5f * h); y++) {
        float t = (y + 0.5f - (yb - h)) / (0.5f * h);
        float inset = w * (0.28f - 0.12f * t);
        for (int x = (int)lroundf(x0 + inset); x < (int)lroundf(x0 + w - inset); x++) {
            bool glass = x > x0 + inset + 0.06f * w && x < x0 + w - inset - 0.06f * w && t > 0.15f;
            paint_tex(s, x, y, ID_CAR, glass ? st->car_window : body, salt, 30.0f);
        }
    }
    fill_rect(s, x0, yb - 0.52f * h, x0 + w, yb - 0.12f * h, ID_CAR, body, salt, 30.0f);
    /* lights */
    fill_rect(s, x0 + 0.05f * w, yb - 0.42f * h, x0 + 0.18f * w, yb - 0.33f * h, ID_CAR, st->cloud, salt, 5);
    fill_rect(s, x0 + 0.82f * w, yb - 0.42f * h, x0 + 0.95f * w, yb - 0.33f * h, ID_CAR, st->cloud, salt, 5);
    fill_ellipse(s, x0 + 0.2f * w, yb - 0.12f * h, 0.11f * w, 0.12f * h, ID_CAR, st->wheel, salt, 5);
    fill_ellipse(s, x0 + 0.8f * w, yb - 0.12f * h, 0.11f * w, 0.12f * h, ID_CAR, st->wheel, salt, 5);
}

static void draw_person(struct scene *s, const struct object *o)
{
    const struct style *st = s->st;
    float d = depth_of(s, o->yb), h = d * s->h * 0.55f * st->person_scale, w = h * 0.28f;
    if (h < 3)
        return;
    const uint8_t *cloth = st->cloth[o->color % st->ncloth];
    const uint8_t *legs = st->cloth[(o->color + 2) % st->ncloth];
    float x = o->x, yb = o->yb;
    uint64_t salt = 400 + (uint64_t)o->color;
    float stride = (o->variant & 1) ? 0.12f * w : 0.0f;
    fill_rect(s, x - 0.38f * w - stride, yb - 0.48f * h, x - 0.06f * w - stride, yb, ID_PERSON, legs, salt, 20);
    fill_rect(s, x + 0.06f * w + stride, yb - 0.48f * h, x + 0.38f * w + stride, yb, ID_PERSON, legs, salt, 20);
    fill_ellipse(s, x, yb - 0.66f * h, 0.5f * w, 0.22f * h, ID_PERSON, cloth, salt, 20);
    fill_ellipse(s, x, yb - 0.9f * h, 0.26f * w, 0.09f * h, ID_PERSON, st->skin, salt, 10);
}

static void draw_pole(struct scene *s, const struct object *o)
{
    const struct style *st = s->st;
    float d = depth_of(s, o->yb), h = d * s->h * 1.1f, pw = d * s->w * 0.012f;
    if (h < 3)
        return;
    float x = o->x, yb = o->yb, top = yb - h;
    fill_rect(s, x - pw / 2, top, x + pw / 2, yb, ID_POLE, st->pole, 500, 10);
    float bw = pw * 3.5f < 1.5f ? 1.5f : pw * 3.5f;
    if (o->variant == 1) {        /* traffic sign */
        fill_rect(s, x - bw, top + 0.05f * h, x + bw, top + 0.05f * h + 2 * bw, ID_SIGN, st->sign, 510, 5);
    } else if (o->variant == 2) { /* traffic light: box with a lit lamp */
        float bx = x + pw / 2, by = top + 0.04f * h;
        fill_rect(s, bx, by, bx + bw, by + 2.6f * bw, ID_LIGHT, st->light, 520, 5);
        static const rgb_t lamp = {90, 230, 90};
        fill_rect(s, bx + 0.25f * bw, by + 1.6f * bw, bx + 0.75f * bw, by + 2.2f * bw, ID_LIGHT, lamp, 521, 5);
    }
}

static void draw_tree(struct scene *s, const struct object *o)
{
    const struct style *st = s->st;
    float d = depth_of(s, o->yb), h = d * s->h * 0.95f, tw = d * s->w * 0.015f;
    if (h < 3)
        return;
    float x = o->x, yb = o->yb;
    fill_rect(s, x - tw / 2, yb - 0.55f * h, x + tw / 2, yb, ID_VEG, st->veg, 600, 30);
    fill_ellipse(s, x, yb - 0.72f * h, 0.3f * h, 0.28f * h, ID_VEG, st->veg, 601 + (uint64_t)o->variant, 45);
}

static void draw_objects(struct scene *s, struct seg_data_rng *r)
{
    struct object obj[24];
    int n = 0;
    float span = s->h - s->yh;
    int ncars = seg_data_rng_int(r, 5), npeople = seg_data_rng_int(r, 5);
    int npoles = 1 + seg_data_rng_int(r, 3), ntrees = seg_data_rng_int(r, 4);
    for (int i = 0; i < ncars; i++) {
        float yb = s->yh + span * (0.12f + 1.0f * (float)seg_data_rng_uniform(r));
        float rl = line_x(s, s->road0[0], s->road_top[0], yb), rr = line_x(s, s->road0[1], s->road_top[1], yb);
        obj[n++] = (struct object){yb, 0, lerp(rl, rr, 0.15f + 0.7f * (float)seg_data_rng_uniform(r)), 0,
                                   seg_data_rng_int(r, 64)};
    }
    for (int i = 0; i < npeople; i++) {
        float yb = s->yh + span * (0.15f + 0.85f * (float)seg_data_rng_uniform(r));
        int side = seg_data_rng_int(r, 2);
        float e = line_x(s, s->road0[side], s->road_top[side], yb), o = line_x(s, s->side0[side], s->side_top[side], yb);
        obj[n++] = (struct object){yb, 1, lerp(e, o, 0.2f + 0.6f * (float)seg_data_rng_uniform(r)),
                                   seg_data_rng_int(r, 2), seg_data_rng_int(r, 64)};
    }
    for (int i = 0; i < npoles; i++) {
        float yb = s->yh + span * (0.1f + 0.9f * (float)seg_data_rng_uniform(r));
        int side = seg_data_rng_int(r, 2);
        float e = line_x(s, s->road0[side], s->road_top[side], yb), o = line_x(s, s->side0[side], s->side_top[side], yb);
        int v = seg_data_rng_uniform(r) < 0.45 ? 1 : seg_data_rng_uniform(r) < 0.5 ? 2 : 0;
        obj[n++] = (struct object){yb, 2, lerp(e, o, 0.1f), v, 0};
    }
    for (int i = 0; i < ntrees; i++) {
        float yb = s->yh + span * (0.1f + 0.8f * (float)seg_data_rng_uniform(r));
        int side = seg_data_rng_int(r, 2);
        float e = line_x(s, s->road0[side], s->road_top[side], yb), o = line_x(s, s->side0[side], s->side_top[side], yb);
        obj[n++] = (struct object){yb, 3, lerp(e, o, 0.75f + 0.2f * (float)seg_data_rng_uniform(r)),
                                   seg_data_rng_int(r, 8), 0};
    }
    qsort(obj, (size_t)n, sizeof obj[0], cmp_obj);
    for (int i = 0; i < n; i++) {
        switch (obj[i].kind) {
        case 0: draw_car(s, &obj[i]); break;
        case 1: draw_person(s, &obj[i]); break;
        case 2: draw_pole(s, &obj[i]); break;
        default: draw_tree(s, &obj[i]); break;
        }
    }
}

/* Fences (or low walls) along a stretch of a sidewalk's outer edge, posts in perspective. */
static void draw_fences(struct scene *s, struct seg_data_rng *r)
{
    const struct style *st = s->st;
    for (int side = 0; side < 2; side++) {
        if (seg_data_rng_uniform(r) > 0.4)
            continue;
        float xt = s->side_top[side], x0 = s->side0[side];
        float ta = 0.1f + 0.5f * (float)seg_data_rng_uniform(r), tb = ta + 0.25f + 0.3f * (float)seg_data_rng_uniform(r);
        int id = seg_data_rng_uniform(r) < 0.3 ? ID_WALL : ID_FENCE;
        for (int x = 0; x < s->w; x++) {
            float xc = x + 0.5f;
            float t = side == 0 ? xc / xt : (s->w - xc) / (s->w - xt);
            if (t < ta || t > tb || t >= 1)
                continue;
            float ground = s->yh + (xc - xt) * (s->h - s->yh) / (x0 - xt);
            float d = depth_of(s, ground), fh = d * s->h * 0.16f;
            bool post = fmodf(-logf(1.0f - t) * 9.0f, 1.0f) < 0.2f;
            for (int y = (int)floorf(ground - fh); y < (int)ceilf(ground); y++) {
                bool rail = fmodf((ground - y) / (fh + 1e-3f) * 3.0f, 1.0f) < 0.35f;
                if (id == ID_WALL)
                    paint_tex(s, x, y, ID_WALL, st->wall, 710, 20);
                else if (post || rail)
                    paint_tex(s, x, y, ID_FENCE, st->fence, 700, 20);
            }
        }
    }
}

static void draw_ego(struct scene *s, struct seg_data_rng *r)
{
    if (seg_data_rng_uniform(r) >= s->st->ego_p)
        return;
    float depth = s->h * (0.06f + 0.05f * (float)seg_data_rng_uniform(r));
    for (int x = 0; x < s->w; x++) {
        float t = (x + 0.5f) / s->w - 0.5f;
        float top = s->h - depth * (1.0f - 1.2f * t * t);
        for (int y = (int)floorf(top); y < s->h; y++) {
            float refl = 0.8f + 0.4f * vnoise(s->tex + 800, 4.0f * x / s->w, 2.0f * y / s->h);
            paint(s, x, y, ID_EGO, s->st->ego, refl);
        }
    }
}

static void post_process(struct scene *s, struct seg_data_rng *r)
{
    const struct style *st = s->st;
    float grad = st->light_grad * (float)(2 * seg_data_rng_uniform(r) - 1);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            float g = s->bright * (1.0f + grad * ((x + 0.5f) / s->w - 0.5f) * 2.0f);
            uint8_t *p = s->rgb + 3 * ((size_t)y * s->w + x);
            for (int k = 0; k < 3; k++)
                p[k] = seg_clamp_u8(p[k] * g + st->pixel_noise * (float)seg_data_rng_normal(r));
        }
    if (st->blur > 0) {
        struct seg_image im = {.w = s->w, .h = s->h, .c = 3, .data = s->rgb};
        seg_image_gaussian_blur(&im, 3, st->blur);
    }
}

enum seg_status seg_synth_render(uint64_t seed, enum seg_synth_domain d, uint64_t stream,
                                 uint64_t index, int w, int h, uint8_t *rgb, uint8_t *ids)
{
    if ((unsigned)d > SEG_SYNTH_TARGET || w < 16 || h < 16 || w > 8192 || h > 8192)
        return seg_error(SEG_STATUS_INVALID, "synth: cannot render %dx%d for domain %d", w, h, (int)d);
    struct seg_data_rng r;
    /* the layout stream does not depend on the domain, only on (seed, stream, index) */
    seg_data_rng_init(&r, seed, 0x5e9e + stream, index);
    struct scene s = {.w = w, .h = h, .st = &styles[d], .rgb = rgb, .ids = ids};
    s.tex = seg_data_rng_next(&r);
    s.yh = h * (0.36f + 0.14f * (float)seg_data_rng_uniform(&r));
    s.xv = w * (0.35f + 0.3f * (float)seg_data_rng_uniform(&r));
    float half_top = w * (0.01f + 0.015f * (float)seg_data_rng_uniform(&r));
    s.road_top[0] = s.xv - half_top;
    s.road_top[1] = s.xv + half_top;
    s.road0[0] = w * (-0.25f + 0.3f * (float)seg_data_rng_uniform(&r));
    s.road0[1] = w * (0.95f + 0.3f * (float)seg_data_rng_uniform(&r));
    float sw = 0.25f + 0.35f * (float)seg_data_rng_uniform(&r);
    s.side0[0] = s.road0[0] - w * sw;
    s.side0[1] = s.road0[1] + w * sw;
    s.side_top[0] = s.xv - half_top * 1.9f;
    s.side_top[1] = s.xv + half_top * 1.9f;
    s.bright = 0.92f + 0.16f * (float)seg_data_rng_uniform(&r);
    draw_sky(&s);
    draw_ground(&s, &r);
    draw_facades(&s, &r, 0);
    draw_facades(&s, &r, 1);
    draw_fences(&s, &r);
    draw_objects(&s, &r);
    /* appearance-only randomness (hood, lighting, noise) has its own stream */
    struct seg_data_rng ra;
    seg_data_rng_init(&ra, seed, 0xa99e + (uint64_t)d * 16 + stream, index);
    draw_ego(&s, &ra);
    post_process(&s, &ra);
    return SEG_STATUS_OK;
}

void seg_synth_defaults(struct seg_synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->w = 128;
    o->h = 64;
    o->n_source = 200;
    o->n_target = 200;
    o->n_val = 50;
    o->n_dev = 50;
}

static enum seg_status write_list(const char *path, struct seg_strv *lines)
{
    size_t n = 0;
    for (int i = 0; i < lines->n; i++)
        n += strlen(lines->v[i]) + 1;
    char *buf = malloc(n + 1), *p = buf;
    if (!buf)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
    for (int i = 0; i < lines->n; i++)
        p += sprintf(p, "%s\n", lines->v[i]);
    enum seg_status st = seg_file_write_atomic(path, buf, (size_t)(p - buf));
    free(buf);
    return st;
}

enum seg_status seg_synth_generate(const struct seg_synth_opts *o)
{
    if (!o->out || !o->out[0])
        return seg_error(SEG_STATUS_INVALID, "synth: no output folder");
    if (o->n_source < 0 || o->n_target < 0 || o->n_val < 0 || o->n_dev < 0 ||
        o->n_source + o->n_target + o->n_val + o->n_dev == 0)
        return seg_error(SEG_STATUS_INVALID, "synth: nothing to generate (%d / %d / %d / %d images)",
                         o->n_source, o->n_target, o->n_val, o->n_dev);
    size_t npx = (size_t)o->w * o->h;
    uint8_t *rgb = malloc(npx * 3), *ids = malloc(npx);
    char *paths[8] = {0};
    struct seg_strv lists[4] = {{0}};
    enum seg_status st = SEG_STATUS_OK;
    if (!rgb || !ids) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "synth: out of host memory");
        goto done;
    }
    uint8_t palette[256 * 3];
    seg_labels_cityscapes_id_palette(palette);
    paths[0] = seg_path_join3(o->out, "source", "images");
    paths[1] = seg_path_join3(o->out, "source", "labels");
    paths[2] = seg_path_join3(o->out, "target", "leftImg8bit/train/synthtown");
    paths[3] = seg_path_join3(o->out, "target", "gtFine/train/synthtown");
    paths[4] = seg_path_join3(o->out, "target", "leftImg8bit/val/synthville");
    paths[5] = seg_path_join3(o->out, "target", "gtFine/val/synthville");
    paths[6] = seg_path_join3(o->out, "target", "leftImg8bit/dev/synthburg");
    paths[7] = seg_path_join3(o->out, "target", "gtFine/dev/synthburg");
    for (int i = 0; i < 8 && st == SEG_STATUS_OK; i++)
        st = paths[i] ? seg_dir_create(paths[i]) : seg_error(SEG_STATUS_OUT_OF_MEMORY, "synth: out of host memory");
    /* (domain, stream, count, image dir, label dir, city) */
    const struct {
        enum seg_synth_domain d;
        int                   stream, count;
        const char           *what, *city;
    } parts[4] = {
        {SEG_SYNTH_SOURCE, 0, o->n_source, "source", NULL},
        {SEG_SYNTH_TARGET, 1, o->n_target, "target train", "synthtown"},
        {SEG_SYNTH_TARGET, 2, o->n_val, "target val", "synthville"},
        /* a split of its own stream for tuning, so that settings are never picked on val */
        {SEG_SYNTH_TARGET, 3, o->n_dev, "target dev", "synthburg"},
    };
    char name[256];
    for (int p = 0; p < 4 && st == SEG_STATUS_OK; p++) {
        for (int i = 0; i < parts[p].count && st == SEG_STATUS_OK; i++) {
            st = seg_synth_render(o->seed, parts[p].d, (uint64_t)parts[p].stream, (uint64_t)i, o->w, o->h, rgb, ids);
            char *ip = NULL, *lp = NULL;
            if (st != SEG_STATUS_OK)
                break;
            if (p == 0) {
                snprintf(name, sizeof name, "%05d.png", i);
                ip = seg_path_join(paths[0], name);
                lp = seg_path_join(paths[1], name);
                if (ip && lp && (st = seg_png_write(ip, rgb, o->w, o->h, 3, 8, NULL, 0)) == SEG_STATUS_OK)
                    st = seg_png_write(lp, ids, o->w, o->h, 1, 8, palette, 256);
            } else {
                const char *city = parts[p].city;
                snprintf(name, sizeof name, "%s_%06d_000019_leftImg8bit.png", city, i);
                ip = seg_path_join(paths[2 * p], name);
                snprintf(name, sizeof name, "%s_%06d_000019_gtFine_labelIds.png", city, i);
                lp = seg_path_join(paths[2 * p + 1], name);
                if (ip && lp && (st = seg_png_write(ip, rgb, o->w, o->h, 3, 8, NULL, 0)) == SEG_STATUS_OK)
                    st = seg_png_write(lp, ids, o->w, o->h, 1, 8, NULL, 0);
                snprintf(name, sizeof name, "%s/%s_%06d_000019_leftImg8bit.png", city, city, i);
            }
            if (!ip || !lp)
                st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "synth: out of host memory");
            free(ip);
            free(lp);
            if (st == SEG_STATUS_OK)
                st = seg_strv_push(&lists[p], name);
            if (st == SEG_STATUS_OK && o->progress)
                o->progress(o->progress_ctx, parts[p].what, i + 1, parts[p].count);
        }
    }
    static const char *const list_names[4] = {"source/train.txt", "target/train.txt", "target/val.txt",
                                              "target/dev.txt"};
    for (int p = 0; p < 4 && st == SEG_STATUS_OK; p++) {
        if (!parts[p].count)
            continue;
        char *lp = seg_path_join(o->out, list_names[p]);
        st = lp ? write_list(lp, &lists[p]) : seg_error(SEG_STATUS_OUT_OF_MEMORY, "synth: out of host memory");
        free(lp);
    }
    if (st == SEG_STATUS_OK) {
        char info[1024];
        int n = snprintf(info, sizeof info,
                         "segda synthetic domain-shift benchmark\n"
                         "seed %llu, size %dx%d, %d source, %d target train, %d target val, %d target dev images\n"
                         "source: GTA5 layout (images/, labels/ = palette PNGs of Cityscapes labelIds)\n"
                         "target: Cityscapes layout (leftImg8bit/, gtFine/*_gtFine_labelIds.png)\n"
                         "classes: road sidewalk building wall fence pole traffic-light traffic-sign\n"
                         "         vegetation terrain sky person car (ego vehicle = labelId 1, ignored)\n",
                         (unsigned long long)o->seed, o->w, o->h, o->n_source, o->n_target, o->n_val, o->n_dev);
        char *ip = seg_path_join(o->out, "README.txt");
        st = ip ? seg_file_write_atomic(ip, info, (size_t)n) : seg_error(SEG_STATUS_OUT_OF_MEMORY, "synth: out of host memory");
        free(ip);
    }
done:
    for (int i = 0; i < 8; i++)
        free(paths[i]);
    for (int p = 0; p < 4; p++)
        seg_strv_free(&lists[p]);
    free(rgb);
    free(ids);
    return st;
}
