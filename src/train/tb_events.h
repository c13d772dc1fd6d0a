/* tb_events.h: TensorBoard event files written without TensorFlow or a protobuf library.
 * A file is a sequence of TFRecords (uint64 length, masked CRC32C of the length, the data,
 * masked CRC32C of the data; little endian), each holding one serialized Event message:
 *   Event        { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
 *                  SessionLog session_log = 6; }
 *   SessionLog   { SessionStatus status = 1; }  (START = 1)
 *   Summary      { repeated Value value = 1; }
 *   Value        { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image        { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 * The first record carries file_version "brain.Event:2". Every record is flushed as it is
 * written, so a run that crashes keeps what it logged. */
#ifndef SEGDA_TB_EVENTS_H
#define SEGDA_TB_EVENTS_H

#include <stdint.h>

#include "segda.h"

struct seg_tb_writer;

/* Creates dir/events.out.tfevents.<unix time>.<host name> and writes the version record. */
enum seg_status seg_tb_open(const char *dir, struct seg_tb_writer **out);
/* The file's path. */
const char *seg_tb_path(const struct seg_tb_writer *w);
/* One Event at step with n scalar values (tags[i] = values[i]). */
enum seg_status seg_tb_scalars(struct seg_tb_writer *w, int64_t step, int n, const char *const *tags,
                               const float *values);
/* One Event at step with an encoded image (PNG bytes) of width x height and channels
 * (1 gray, 3 RGB, 4 RGBA: TensorBoard's colorspace). */
enum seg_status seg_tb_image(struct seg_tb_writer *w, int64_t step, const char *tag, int width, int height,
                             int channels, const uint8_t *png, size_t size);
/* A SessionLog START at step: TensorBoard drops the events of earlier files from step on
 * (a resumed run's first step; what a killed run logged after its checkpoint). */
enum seg_status seg_tb_session_start(struct seg_tb_writer *w, int64_t step);
void seg_tb_close(struct seg_tb_writer *w);

/* CRC-32C (Castagnoli), and TFRecord's mask of it: rotated right by 15, plus 0xa282ead8. */
uint32_t seg_crc32c(const uint8_t *p, size_t n);
uint32_t seg_crc32c_masked(const uint8_t *p, size_t n);

#endif
