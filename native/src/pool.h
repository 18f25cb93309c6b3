// pool.h — the threads libvirt calls run on.
//
// Why not Napi::AsyncWorker: it runs on libuv's pool (4 threads by default), and a libvirt call
// hung on an unresponsive guest agent holds its thread until the agent answers, possibly
// forever. Four such calls would starve every other call and Node's own fs/dns work. This pool
// instead grows: a job goes to an idle thread if there is one, otherwise to a new thread, so a
// hung call only ever costs one thread. Threads idle for a while exit, so the pool shrinks back.
#pragma once
#include <functional>

namespace vmsnap {

/** Runs `job` on a pool thread soon; never blocks and never waits behind a hung job. */
void Submit(std::function<void()> job);

}  // namespace vmsnap
