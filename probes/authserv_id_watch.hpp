// A configured authserv_id that no Authentication-Results header carries drops every verdict
// without a sound (Microsoft 365 writes no authserv-id at all; Yahoo's names the host that
// delivered). This watch says so: in the run's transcript each time, and in the log once a few
// delivered messages in a row carried results from other ids only, naming those ids.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/transcript.hpp"
#include "protocols/mail_headers.hpp"

namespace mailcanary {

class AuthservIdWatch {
  public:
    // Deliveries in a row with results from other ids before the log says so.
    static constexpr unsigned kMissesBeforeWarning = 3;

    // After a delivered message, with its header fields. A message without Authentication-Results
    // says nothing about the id and is not counted; one that matches ends a run of misses.
    void observe(const std::vector<HeaderField>& fields, std::string_view trusted,
                 std::string_view target, Transcript& transcript);

  private:
    unsigned misses_ = 0;
    bool warned_ = false;
};

}  // namespace mailcanary
