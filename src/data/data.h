/* data.h: the data layer, all on the host: image I/O, datasets and label maps,
 * augmentation, a background loader, evaluation metrics, colorized outputs and the
 * synthetic domain-shift benchmark. Every fallible call returns enum seg_status with a
 * message (naming the file and the problem) in seg_last_error(). */
#ifndef SEGDA_DATA_H
#define SEGDA_DATA_H

#include <stdatomic.h>
#include <stdio.h>

#include "segda.h"

#define SEG_IGNORE 255   /* label value that losses and metrics skip */

/* ---- random numbers -------------------------------------------------------------
 * Counter-based (splitmix64): a stream depends only on (seed, a, b), e.g. the loader's
 * (seed, epoch, index), so results do not depend on thread scheduling. */
struct seg_data_rng {
    uint64_t s;
};
void     seg_data_rng_init(struct seg_data_rng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t seg_data_rng_next(struct seg_data_rng *r);
double   seg_data_rng_uniform(struct seg_data_rng *r);          /* [0, 1) */
int      seg_data_rng_int(struct seg_data_rng *r, int n);       /* [0, n), n >= 1 */
double   seg_data_rng_range(struct seg_data_rng *r, double lo, double hi);
double   seg_data_rng_normal(struct seg_data_rng *r);           /* N(0, 1) */

/* ---- files ------------------------------------------------------------------------ */
/* Whole file into a malloc'ed buffer; files over max bytes are refused (0: 1 GiB). */
enum seg_status seg_file_read(const char *path, size_t max, uint8_t **data, size_t *size);
/* Writes path.tmp.<pid>, fsyncs it and renames it over path. */
enum seg_status seg_file_write_atomic(const char *path, const void *data, size_t size);
/* mkdir -p */
enum seg_status seg_dir_create(const char *path);

/* ---- images -----------------------------------------------------------------------
 * 8-bit interleaved pixels (row-major, c channels). Label maps use c = 1 with class
 * indices and SEG_IGNORE. */
struct seg_image {
    int      w, h, c;
    uint8_t *data;
};
enum seg_status seg_image_alloc(struct seg_image *im, int w, int h, int c);
void seg_image_free(struct seg_image *im);

/* Decodes a PNG (8/16-bit, any colour type) or JPEG to RGB (c = 3). A missing, truncated
 * (PNG: chunk past the end or no IEND; JPEG: no end-of-image marker) or corrupt file
 * (bad signature, CRC, zlib data) is an error naming the file. */
enum seg_status seg_image_load(const char *path, struct seg_image *out);
enum seg_status seg_image_decode(const void *buf, size_t size, const char *name,
                                 struct seg_image *out);

/* Raw label ids of a PNG: channel 0 (8 or 16 bit; SYNTHIA's class channel) or the
 * palette index of a palette PNG (GTA5), never the palette colour. */
struct seg_ids {
    int       w, h;
    int       depth;      /* bits per sample in the file */
    int       channels;   /* in the file (1 for palette) */
    bool      palette;
    uint16_t *data;       /* w * h */
};
enum seg_status seg_ids_load(const char *path, struct seg_ids *out);
enum seg_status seg_ids_decode(const void *buf, size_t size, const char *name,
                               struct seg_ids *out);
void seg_ids_free(struct seg_ids *ids);

/* PNG encoder: c = 1 (grey), 2 (grey+alpha), 3 (RGB), 4 (RGBA); depth 8 (uint8_t samples)
 * or 16 (uint16_t samples, host order); with a palette (npalette RGB triples, c = 1,
 * depth 8) the samples are palette indices. seg_png_write is atomic. */
enum seg_status seg_png_encode(const void *pixels, int w, int h, int c, int depth,
                               const uint8_t *palette, int npalette, uint8_t **out,
                               size_t *size);
enum seg_status seg_png_write(const char *path, const void *pixels, int w, int h, int c,
                              int depth, const uint8_t *palette, int npalette);
static inline enum seg_status seg_image_write_png(const char *path, const struct seg_image *im)
{
    return seg_png_write(path, im->data, im->w, im->h, im->c, 8, NULL, 0);
}
/* Baseline JPEG (c = 1 or 3), quality 1..100, atomic. */
enum seg_status seg_jpeg_write(const char *path, const uint8_t *pixels, int w, int h, int c,
                               int quality);

/* Resampling (PIL semantics): bilinear with antialiasing when shrinking, for images;
 * nearest (source = floor((x + 0.5) * in / out)) for labels. out is allocated. */
enum seg_status seg_image_resize_bilinear(const struct seg_image *in, int w, int h,
                                          struct seg_image *out);
enum seg_status seg_image_resize_nearest(const struct seg_image *in, int w, int h,
                                         struct seg_image *out);

/* ---- label spaces and datasets -----------------------------------------------------
 * Class spaces (methods.md section 6):
 *   19: Cityscapes trainIds (road ... bicycle);
 *   16: SYNTHIA / SDCA order: road sidewalk building wall fence pole light sign
 *       vegetation sky person rider car bus motorcycle bicycle;
 *   13: the 16 without wall, fence and pole, i.e. the Cross-City classes and the
 *       SYNTHIA mIoU* set. */
bool        seg_labels_space_valid(int num_classes);
const char *seg_labels_class_name(int num_classes, int cls);
/* The Cityscapes trainId (0..18) of class cls of a space, -1 when out of range. */
int  seg_labels_to19(int num_classes, int cls);
/* Class of a space for a Cityscapes trainId, SEG_IGNORE when the space lacks it. */
int  seg_labels_from19(int num_classes, int train_id);
/* Cityscapes palette colour of a class (SEG_IGNORE and unknown: black). */
void seg_labels_color(int num_classes, int cls, uint8_t rgb[3]);
/* Cityscapes labelId palette (ids 0..33, the rest black): 256 RGB triples, as GTA5's
 * palette label PNGs carry. */
void seg_labels_cityscapes_id_palette(uint8_t palette[256 * 3]);

enum seg_dataset_kind {
    SEG_DATASET_GTA5,        /* images/NNNNN.png, labels/NNNNN.png (labelIds, palette PNG) */
    SEG_DATASET_SYNTHIA,     /* [RAND_CITYSCAPES/]RGB/, GT/LABELS/ (16-bit, class in channel 0) */
    SEG_DATASET_CITYSCAPES,  /* leftImg8bit/<split>/<city>/, gtFine/<split>/<city>/..._labelIds */
    SEG_DATASET_CROSSCITY,   /* <City>/Images/{Train,Test}/<id>.jpg, <City>/Labels/Test/<id>_eval.png */
    SEG_DATASET_COUNT
};
const char *seg_dataset_kind_name(enum seg_dataset_kind k);
/* "gta5", "synthia", "cityscapes", "crosscity"; -1 when unknown. */
int seg_dataset_kind_from_name(const char *name);

#define SEG_LABELMAP_INVALID 254   /* lut value of ids outside the dataset's id set */
struct seg_labelmap {
    enum seg_dataset_kind kind;
    int                   num_classes;
    int                   max_id;          /* largest valid raw id */
    uint8_t               lut[65536];      /* raw id -> class, SEG_IGNORE or SEG_LABELMAP_INVALID */
};
/* GTA5 / Cityscapes / Cross-City: labelId -> trainId (19) then to the space; SYNTHIA: raw
 * id -> 19-class variant (16 is SDCA's table). Valid raw ids: 0..33 and 255 (labelIds),
 * 0..22 (SYNTHIA). */
enum seg_status seg_labelmap_init(struct seg_labelmap *m, enum seg_dataset_kind kind,
                                  int num_classes);
/* Maps ids into labels (w*h bytes). An id outside the map is an error naming name, the
 * value and the pixel. */
enum seg_status seg_labelmap_apply(const struct seg_labelmap *m, const struct seg_ids *ids,
                                   const char *name, uint8_t *labels);

struct seg_dataset_opts {
    enum seg_dataset_kind kind;
    const char *root;
    const char *split;       /* cityscapes: train | val | test; crosscity: train | test (val);
                                gta5 / synthia: ignored */
    const char *city;        /* crosscity: Rio | Rome | Taipei | Tokyo */
    const char *list;        /* optional file list, one relative path (or "image label") a
                                line as the official repos ship them; NULL/"": scan (sorted) */
    int         num_classes; /* 19, 16 or 13 */
    bool        labels;      /* load labels (false: unlabelled target training data) */
    bool        skip_bad;    /* skip missing/bad samples with a warning and count them */
    int         max_items;   /* keep the first N (0: all) */
    /* A folder of label PNGs holding class ids (0..num_classes-1, 255 = ignore) named by
     * seg_dataset_flat_name (what `segda pseudo-label` writes): they replace the dataset's
     * own labels (self-training on pseudo labels). NULL/"": the dataset's labels. */
    const char *label_dir;
};
struct seg_dataset {
    enum seg_dataset_kind kind;
    int                   num_classes;
    int                   n;
    bool                  has_labels, skip_bad;
    char                **images;   /* paths */
    char                **labels;   /* paths, NULL when unlabelled */
    char                **names;    /* relative stems for outputs ("aachen/aachen_000000_000019") */
    struct seg_labelmap  *map;
    atomic_long           skipped;  /* samples skipped (skip_bad) */
};
enum seg_status seg_dataset_open(const struct seg_dataset_opts *o, struct seg_dataset **out);
/* A sample name as one file name: "aachen/aachen_000000_000019" -> "aachen_aachen_000000_000019". */
void seg_dataset_flat_name(const char *name, char *out, size_t size);
void seg_dataset_close(struct seg_dataset *ds);
/* Sample i: RGB image and (when labelled; labels may be NULL) the class map (c = 1). A
 * label of another size than its image or an id outside the map is an error. */
enum seg_status seg_dataset_load(const struct seg_dataset *ds, int i, struct seg_image *image,
                                 struct seg_image *labels);
/* Per image, a bit mask of the classes present (for class-balanced sampling), computed
 * with `threads` threads, read from / saved to cache_path when given (atomic). */
enum seg_status seg_dataset_class_presence(struct seg_dataset *ds, const char *cache_path,
                                           int threads, uint32_t **masks);
/* Per image, the pixel count of each class ([n][num_classes], at the label files' size:
 * DAFormer's sample_class_stats), with the same threads and cache (the presence masks are
 * derived from these counts, so one cache file serves both). */
enum seg_status seg_dataset_class_pixels(struct seg_dataset *ds, const char *cache_path, int threads,
                                         uint32_t **counts);

/* ---- augmentation -------------------------------------------------------------------
 * Order: resize (fixed size, PLCA's random shorter side, or none: the file's size) x random
 * scale (a uniform range, SDCA's self-training, or one of a list) -> random crop
 * (padding image 0 / label 255) -> horizontal flip -> photometric (SDCA: colour jitter in
 * random order, random grayscale, gaussian blur). Images bilinear, labels nearest. */
#define SEG_AUGMENT_MAX_SCALES 8
struct seg_augment {
    int   resize_w, resize_h;       /* 0: keep */
    int   short_min, short_max;     /* > 0: shorter side to a random integer in [min, max] */
    float scale_min, scale_max;     /* random factor after resizing (1, 1: none), uniform */
    float scale_choices[SEG_AUGMENT_MAX_SCALES]; /* or one of these, equally likely (DASS:
                                                    0.8, 1, 1.2); exclusive with a range */
    int   nscale_choices;
    int   crop_w, crop_h;           /* 0: none */
    bool  flip;                     /* p = 0.5 */
    bool  photometric;
    float brightness, contrast, saturation, hue;   /* ColorJitter ranges */
    float gray_p;                   /* RandomGrayscale */
    int   blur_kernel;              /* 0: none; odd */
    float blur_sigma_min, blur_sigma_max;
    bool  label_full_res;           /* labels keep their file size (evaluation) */
};
/* Identity (no resizing, no randomness). */
void seg_augment_defaults(struct seg_augment *a);
/* SDCA's source photometric augmentation: jitter 0.5/0.5/0.5/0.2, grayscale 0.2, blur
 * 3x3 with sigma in [0.1, 2.0]. */
void seg_augment_sdca_photometric(struct seg_augment *a);
enum seg_status seg_augment_check(const struct seg_augment *a);
/* In place (buffers are replaced); labels may be NULL or empty. */
enum seg_status seg_augment_apply(const struct seg_augment *a, struct seg_data_rng *rng,
                                  struct seg_image *image, struct seg_image *labels);
/* Building blocks (RGB, in place). */
void seg_image_flip(struct seg_image *im);
void seg_image_color_jitter(struct seg_image *im, struct seg_data_rng *rng, float brightness,
                            float contrast, float saturation, float hue);
void seg_image_grayscale(struct seg_image *im);
enum seg_status seg_image_gaussian_blur(struct seg_image *im, int kernel, float sigma);

/* ---- loader ------------------------------------------------------------------------ */
enum seg_norm {
    SEG_NORM_NONE,      /* RGB 0..255 */
    SEG_NORM_DEEPLAB,   /* BGR 0..255 minus (104.00698793, 116.66876762, 122.67891434) */
    SEG_NORM_IMAGENET,  /* RGB / 255 minus (0.485, 0.456, 0.406) over (0.229, 0.224, 0.225) */
};
/* In place on n x 3 x h x w RGB 0..255 floats; seg_data_denormalize undoes it. */
void seg_data_normalize(float *x, int n, int h, int w, enum seg_norm mode);
void seg_data_denormalize(float *x, int n, int h, int w, enum seg_norm mode);

enum seg_sampling {
    SEG_SAMPLING_SEQUENTIAL,
    SEG_SAMPLING_SHUFFLE,          /* a permutation per epoch */
    SEG_SAMPLING_CLASS_BALANCED,   /* SDCA: class ~ 1/log(1.01 + its frequency among the
                                      images drawn this sub-epoch), then a file with it */
    SEG_SAMPLING_RARE_CLASS,       /* DAFormer's rare-class sampling: class c with probability
                                      softmax((1 - f_c) / T) (f_c: its share of the labelled
                                      pixels), then a file holding more than rcs_min_pixels of
                                      it, re-cropped up to 10 times until the crop holds more
                                      than rcs_min_pixels x rcs_min_crop_ratio */
};

struct seg_loader_opts {
    struct seg_dataset *ds;
    struct seg_augment  aug;
    int                 batch;
    int                 workers;     /* threads; 0: load on the calling thread */
    int                 prefetch;    /* batches produced ahead (>= 1) */
    uint64_t            seed;
    enum seg_sampling   sampling;
    const uint32_t     *presence;    /* class masks (CLASS_BALANCED), from seg_dataset_class_presence */
    const uint32_t     *class_pixels; /* RARE_CLASS: [n][num_classes], from seg_dataset_class_pixels */
    double              rcs_temperature;
    int                 rcs_min_pixels;
    float               rcs_min_crop_ratio;
    int                 epoch_size;  /* class-balanced sub-epoch (0: SDCA's 3000); other
                                        samplings: an epoch is the dataset */
    bool                repeat;      /* endless (training); else one epoch, last batch partial */
    enum seg_norm       norm;
    /* Data-parallel training: this process takes items [rank * b, (rank + 1) * b) of every
     * batch of `batch`, b = batch / shard_count (which must divide it); the items, their
     * order and their augmentation are those of the unsharded stream. 0 or 1: no sharding. */
    int                 shard_rank, shard_count;
};
void seg_loader_opts_defaults(struct seg_loader_opts *o);

/* One batch: n x 3 x h x w float images and n x lh x lw int32 labels (SEG_IGNORE =
 * ignore; NULL when unlabelled). (lh, lw) = (h, w) unless aug.label_full_res. */
struct seg_data_batch {
    int      n, h, w, lh, lw;
    float   *images;
    int32_t *labels;
    int     *indices;    /* dataset index of each item */
    int64_t  epoch;      /* of the first item */
    int64_t  position;   /* stream position of the first item */
};

struct seg_loader;
/* The same seed gives the same batches whatever `workers`: sample k of epoch e draws its
 * randomness from (seed, e, k) and batches are delivered in order. Batches of more than
 * one need one size: the crop's, else (no random size) the first sample's; a sample of
 * another size is an error. With skip_bad, a sample that fails to load is replaced by the
 * next index that loads (counted in ds->skipped). */
enum seg_status seg_loader_create(const struct seg_loader_opts *o, struct seg_loader **out);
/* The next batch, valid until released (at most `prefetch` may be held); *out = NULL at
 * the end of a one-epoch stream. A failed sample (unless skip_bad) fails this call and
 * every later one. */
enum seg_status seg_loader_next(struct seg_loader *l, struct seg_data_batch **out);
void seg_loader_release(struct seg_loader *l, struct seg_data_batch *b);
void seg_loader_destroy(struct seg_loader *l);
/* Batches in a one-epoch stream (the last may be partial), or -1 for an endless one. */
int64_t seg_loader_batches(const struct seg_loader *l);

/* Item i of a batch back to 8-bit RGB (undoing norm). */
enum seg_status seg_data_batch_image(const struct seg_data_batch *b, int i, enum seg_norm norm,
                                     struct seg_image *out);

/* ---- metrics ------------------------------------------------------------------------ */
#define SEG_METRICS_MAX_CLASSES 64
struct seg_confusion {
    int       k;
    uint64_t *m;     /* k x k, m[label * k + prediction] */
};
enum seg_status seg_confusion_init(struct seg_confusion *c, int k);
void seg_confusion_free(struct seg_confusion *c);
void seg_confusion_reset(struct seg_confusion *c);
/* Labels SEG_IGNORE are skipped; other labels and every prediction must lie in [0, k). */
enum seg_status seg_confusion_add(struct seg_confusion *c, const int32_t *pred,
                                  const int32_t *labels, size_t n);
enum seg_status seg_confusion_merge(struct seg_confusion *dst, const struct seg_confusion *src);
/* IoU_c = TP / (TP + FP + FN); NaN when the class is absent from labels and predictions. */
void seg_confusion_iou(const struct seg_confusion *c, double *iou);
/* Mean of the non-NaN IoUs of the given classes (NaN if none). */
double seg_miou_subset(const double *iou, const int *classes, int n);

/* The means papers report for a space: 19 -> mIoU (19), mIoU16 (SYNTHIA's 16 classes),
 * mIoU13 (mIoU*, also without wall, fence, pole); 16 -> mIoU16, mIoU13; 13 -> mIoU13.
 * Other k: mIoU over all. */
#define SEG_METRICS_MAX_VIEWS 3
struct seg_metrics_report {
    int      k;
    uint64_t pixels;                              /* counted (non-ignored) pixels */
    double   pixel_acc;
    double   iou[SEG_METRICS_MAX_CLASSES];
    int      nviews;
    char     view_name[SEG_METRICS_MAX_VIEWS][16];
    double   view_miou[SEG_METRICS_MAX_VIEWS];
};
/* Classes of view v of a k-class space into classes[]; returns their count (0: no view). */
int  seg_metrics_view_classes(int k, int v, const char **name, int *classes);
void seg_metrics_compute(const struct seg_confusion *c, struct seg_metrics_report *r);
/* Per-class table then the means, in percent. */
void seg_metrics_print(const struct seg_metrics_report *r, FILE *f);
enum seg_status seg_metrics_save_json(const struct seg_metrics_report *r, const char *path);
enum seg_status seg_metrics_save_csv(const struct seg_metrics_report *r, const char *path);

/* ---- colorized outputs ---------------------------------------------------------------- */
/* Class map (int32, SEG_IGNORE black) to an RGB image with the Cityscapes palette. */
enum seg_status seg_colorize(const int32_t *labels, int w, int h, int num_classes,
                             struct seg_image *out);
/* out = (1 - alpha) * image + alpha * colors; sizes must match. */
enum seg_status seg_overlay(const struct seg_image *image, const struct seg_image *colors,
                            float alpha, struct seg_image *out);
/* A PNG with three panels side by side: input | ground truth | prediction, all at the
 * prediction's size (input resized bilinearly, gt by nearest; gt may be NULL: black). */
/* The same grid as an image (grid->w = 3 * w). */
enum seg_status seg_grid_compose(const struct seg_image *input, const int32_t *gt, int gt_w, int gt_h,
                                 const int32_t *pred, int w, int h, int num_classes, struct seg_image *grid);
enum seg_status seg_grid_write(const char *path, const struct seg_image *input,
                               const int32_t *gt, int gt_w, int gt_h, const int32_t *pred,
                               int w, int h, int num_classes);

/* ---- prediction files ------------------------------------------------------------------
 * Class maps as PNGs other tools exchange: trainid (8-bit grey class indices of the space,
 * i.e. Cityscapes trainIds for 19 classes), labelid (8-bit grey Cityscapes labelIds, the
 * benchmark's submission format) or color (RGB, seg_colorize's palette). */
enum seg_pred_format { SEG_PRED_AUTO, SEG_PRED_TRAINID, SEG_PRED_LABELID, SEG_PRED_COLOR };
/* "auto", "trainid", "labelid", "color"; -1 when unknown. */
int         seg_pred_format_from_name(const char *name);
const char *seg_pred_format_name(enum seg_pred_format f);
/* A class map (0..num_classes-1) as an image of format f (not auto): c = 1 for ids (values
 * outside the classes: 255 as trainid, 0 "unlabeled" as labelid), c = 3 for color. labelid
 * needs a 19, 16 or 13-class space. */
enum seg_status seg_pred_encode(const int32_t *classes, int w, int h, int num_classes,
                                enum seg_pred_format f, struct seg_image *out);

/* Ground-truth label PNGs of a folder and its subfolders, sorted: the *_gtFine_labelIds.png
 * when there are any (a Cityscapes gtFine folder), else every PNG. names[i]: the path below
 * the folder without .png, _gtFine_labelIds or _eval (Cross-City), as a dataset names it. */
struct seg_gt_files {
    int    n;
    char **paths;
    char **names;
};
enum seg_status seg_gt_files_scan(const char *dir, struct seg_gt_files *out);
void            seg_gt_files_free(struct seg_gt_files *g);

/* How seg_pred_dir_score read the folder. */
struct seg_pred_score {
    int                  images;      /* ground-truth images scored */
    int                  color_files; /* predictions read as colours */
    int                  id_files;    /* ... as grey (or palette-index) ids */
    enum seg_pred_format id_format;   /* trainid or labelid: how the ids were read */
    int                  unmatched;   /* PNGs of the folder no ground-truth image named */
};
/* Scores the prediction PNGs of dir (and its subfolders) against the first max_items (0:
 * all) ground-truth files, raw ids decoded by map, into conf (map->num_classes classes).
 * Ground truth named S (its last path component) is scored with the PNG named S,
 * S_leftImg8bit, S_gtFine_labelIds, each optionally followed by _pred, or with its flat
 * name (seg_dataset_flat_name). auto reads an RGB PNG as color and grey or palette PNGs as
 * labelid when every value in the folder is the labelId of a class, else as trainid. A
 * missing prediction, one of another size than its ground truth, an RGB PNG where ids are
 * asked for, an unknown id or colour: an error naming the file (and the value and pixel). */
enum seg_status seg_pred_dir_score(const char *dir, enum seg_pred_format format,
                                   const struct seg_gt_files *gt, const struct seg_labelmap *map,
                                   int max_items, struct seg_confusion *conf,
                                   struct seg_pred_score *info);

/* ---- synthetic domain-shift benchmark ------------------------------------------------
 * Street scenes (road with perspective, sidewalks, buildings, sky, vegetation, terrain,
 * fence, poles with signs and lights, cars, people; painter's order gives occlusion).
 * Source and target share the layout statistics and labels but differ in appearance
 * (class palettes, textures, lighting, noise, blur, object scale). Written as
 *   OUT/source: GTA5 layout (images/, labels/ palette PNGs of labelIds, train.txt)
 *   OUT/target: Cityscapes layout (leftImg8bit/ and gtFine/ *_labelIds, train and val,
 *               train.txt / val.txt lists)
 * so the GTA5 and Cityscapes loaders read them unchanged. Same seed, same bytes. */
enum seg_synth_domain { SEG_SYNTH_SOURCE = 0, SEG_SYNTH_TARGET = 1 };
struct seg_synth_opts {
    const char *out;
    uint64_t    seed;
    int         w, h;
    int         n_source, n_target, n_val;
    int         n_dev; /* target dev split: for tuning, kept apart from val */
    /* Called after every image (may be NULL). */
    void      (*progress)(void *ctx, const char *what, int done, int total);
    void       *progress_ctx;
};
void seg_synth_defaults(struct seg_synth_opts *o);   /* 128x64, 200 / 200 / 50 / 50, seed 1 */
/* One scene in memory: rgb w*h*3, ids w*h Cityscapes labelIds. stream separates splits. */
enum seg_status seg_synth_render(uint64_t seed, enum seg_synth_domain d, uint64_t stream,
                                 uint64_t index, int w, int h, uint8_t *rgb, uint8_t *ids);
enum seg_status seg_synth_generate(const struct seg_synth_opts *o);

/* The `segda synth` command (src/app/cmd_synth.c, in the executable). */
int seg_cmd_synth(int argc, char **argv);

#endif
