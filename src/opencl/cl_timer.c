/* cl_timer.c: device timestamps for bench. timer_start enqueues an empty kernel with a
 * profiling event; timer_stop enqueues another, waits, and takes the time from the end of
 * the first to the start of the second: on the in-order queue that is the device time of
 * everything queued in between, every kernel of a CLBlast call included (the event a CLBlast
 * routine returns covers only its last kernel). */
#include "opencl/cl_internal.h"

static enum seg_status mark(struct seg_backend *be, cl_event *ev, const char *where)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    struct seg_cl_kernel_entry *k;
    SEG_CL_TRY(seg_cl_kernel_get(c, "peak", "seg_timer_mark", &k));
    size_t one = 1;
    cl_int err = clEnqueueNDRangeKernel(c->queue, k->kernel, 1, NULL, &one, &one, 0, NULL, ev);
    if (err != CL_SUCCESS) return seg_cl_fail(err, "clEnqueueNDRangeKernel", where);
    return SEG_STATUS_OK;
}

/* Training queues run without profiling (drivers may pay for timestamps on every command):
 * the first timer swaps in a profiling queue, after the old one has drained. */
static enum seg_status enable_profiling(struct seg_cl_ctx *c)
{
    cl_int err = CL_SUCCESS;
    cl_command_queue q = clCreateCommandQueue(c->context, c->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS)
        return seg_error(SEG_STATUS_UNSUPPORTED, "opencl: the device offers no profiling queue");
    SEG_CL_CALL(clFinish, "timer_start", c->queue);
    clReleaseCommandQueue(c->queue);
    c->queue = q;
    c->profiling = true;
    return SEG_STATUS_OK;
}

enum seg_status seg_cl_timer_start(struct seg_backend *be)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    if (!c->profiling)
        SEG_CL_TRY(enable_profiling(c));
    if (c->tstart) clReleaseEvent(c->tstart);
    c->tstart = NULL;
    return mark(be, &c->tstart, "timer_start");
}

enum seg_status seg_cl_timer_stop(struct seg_backend *be, double *device_ms)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    *device_ms = 0.0;
    if (!c->tstart) return seg_error(SEG_STATUS_INVALID, "opencl: timer_stop without timer_start");
    cl_event stop = NULL;
    enum seg_status st = mark(be, &stop, "timer_stop");
    cl_ulong t0 = 0, t1 = 0;
    cl_int err = CL_SUCCESS;
    if (!st) {
        be->counts.host_syncs++;
        err = clWaitForEvents(1, &stop);
        if (err == CL_SUCCESS)
            err = clGetEventProfilingInfo(c->tstart, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL);
        if (err == CL_SUCCESS)
            err = clGetEventProfilingInfo(stop, CL_PROFILING_COMMAND_START, sizeof t1, &t1, NULL);
        if (err != CL_SUCCESS) st = seg_cl_fail(err, "clGetEventProfilingInfo", "timer_stop");
    }
    if (stop) clReleaseEvent(stop);
    clReleaseEvent(c->tstart);
    c->tstart = NULL;
    if (!st) *device_ms = t1 > t0 ? (double)(t1 - t0) / 1e6 : 0.0;
    return st;
}
