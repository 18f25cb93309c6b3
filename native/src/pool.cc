// pool.cc — a thread pool that grows instead of queueing (see pool.h for why).
#include "pool.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace vmsnap {
namespace {

constexpr auto kIdleExit = std::chrono::seconds(30);

struct Pool {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> queue;
  size_t idle = 0;  // threads waiting in Loop()

  void Loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      ++idle;
      bool work = wake.wait_for(lock, kIdleExit, [this] { return !queue.empty(); });
      --idle;
      if (!work) return;  // idle long enough: shrink
      auto job = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }
};

// Leaked on purpose: threads still hung in libvirt at process exit must not find it destroyed.
Pool* const pool = new Pool();

}  // namespace

void Submit(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(pool->mutex);
  pool->queue.push_back(std::move(job));
  // Every queued job needs a thread of its own: an idle one, or a new one if all are busy
  // (possibly hung), so no job ever waits behind another.
  if (pool->idle >= pool->queue.size()) {
    pool->wake.notify_one();
  } else {
    std::thread([] { pool->Loop(); }).detach();
  }
}

}  // namespace vmsnap
