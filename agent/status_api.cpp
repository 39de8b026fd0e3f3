#include "agent/status_api.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/duration.hpp"
#include "common/json_writer.hpp"

namespace mailcanary {
namespace {

constexpr std::string_view kStatusPath = "/api/v1/status";
constexpr std::string_view kResultsPath = "/api/v1/results";

double seconds(std::chrono::nanoseconds duration) {
    return std::chrono::duration<double>(duration).count();
}

std::string_view state_of(const ProbeResults* found) {
    if (found == nullptr || !found->last) return "pending";
    return found->last->outcome.success() ? "ok" : "failing";
}

// The server's last reply in the run before the goodbye (QUIT, LOGOUT), whose answer says
// nothing: the reply that ended a failed run, the queue id's 250 of an accepted message.
std::string_view last_reply(const Transcript& transcript) {
    std::string_view reply;
    bool closing = false;
    for (const auto& entry : transcript.entries()) {
        if (entry.direction == Transcript::Direction::client) {
            const std::string_view text = entry.text;
            closing = text.ends_with("QUIT") || text.ends_with("LOGOUT");
        } else if (entry.direction == Transcript::Direction::server && !closing) {
            reply = entry.text;
        }
    }
    return reply;
}

void write_reason(JsonWriter& json, const Outcome& outcome) {
    json.key("reason");
    if (outcome.failure) {
        json.value(to_string(*outcome.failure));
    } else {
        json.null();
    }
    json.key("detail").value(outcome.detail);
}

void write_phases(JsonWriter& json, const RunResult& run) {
    json.key("phases").begin_array();
    for (const Phase phase : kAllPhases) {
        const auto& duration = run.phase_durations[static_cast<std::size_t>(phase)];
        if (!duration) continue;
        json.begin_object()
            .key("phase")
            .value(to_string(phase))
            .key("duration_seconds")
            .value(seconds(*duration))
            .end_object();
    }
    json.end_array();
}

void write_transcript(JsonWriter& json, const Transcript& transcript) {
    json.key("transcript").begin_object();
    json.key("started").value(utc_timestamp(transcript.started_wall()));
    json.key("truncated").value(transcript.truncated());
    json.key("entries").begin_array();
    for (const auto& entry : transcript.entries()) {
        constexpr std::string_view kDirections[] = {"client", "server", "note"};
        json.begin_object()
            .key("at_seconds")
            .value(seconds(entry.at))
            .key("direction")
            .value(kDirections[static_cast<int>(entry.direction)])
            .key("text")
            .value(entry.text)
            .end_object();
    }
    json.end_array().end_object();
}

enum class WithTranscript : bool { no, yes };

void write_run(JsonWriter& json, const RunResult& run, WithTranscript with_transcript) {
    json.begin_object();
    json.key("finished").value(utc_timestamp(run.finished));
    json.key("duration_seconds").value(seconds(run.duration));
    json.key("success").value(run.outcome.success());
    write_reason(json, run.outcome);
    json.key("last_reply").value(last_reply(run.transcript));
    json.key("queue_id").value(run.outcome.queue_id);
    json.key("delivery_seconds");
    if (run.delivery) {
        json.value(seconds(*run.delivery));
    } else {
        json.null();
    }
    write_phases(json, run);
    if (with_transcript == WithTranscript::yes) write_transcript(json, run.transcript);
    json.end_object();
}

void write_optional_run(JsonWriter& json, std::string_view name,
                        const std::optional<RunResult>& run, WithTranscript with_transcript) {
    json.key(name);
    if (run) {
        write_run(json, *run, with_transcript);
    } else {
        json.null();
    }
}

void write_history(JsonWriter& json, const RunHistory& history) {
    json.key("history").begin_array();
    for (const auto& run : history.runs()) {
        json.begin_object()
            .key("finished")
            .value(utc_timestamp(run.finished))
            .key("duration_seconds")
            .value(seconds(run.duration))
            .key("reason");
        if (run.failure) {
            json.value(to_string(*run.failure));
        } else {
            json.null();
        }
        json.end_object();
    }
    json.end_array();
}

// The instance's labels (ip_family) as an object; {} for a target that is one instance.
void write_instance_labels(JsonWriter& json, const TargetConfig& instance) {
    json.key("labels").begin_object();
    for (const auto& [name, value] : instance.instance_labels) json.key(name).value(value);
    json.end_object();
}

void write_probe_status(JsonWriter& json, const TargetConfig& target, const std::string& probe,
                        const ProbeResults* found) {
    json.begin_object();
    json.key("target").value(target.name);
    json.key("probe").value(probe);
    write_instance_labels(json, target);
    json.key("host").value(target.host);
    json.key("port").value(static_cast<std::int64_t>(target.port));
    json.key("interval_seconds").value(seconds(target.interval));
    json.key("backoff_seconds").value(found ? seconds(found->backoff) : 0.0);
    json.key("state").value(state_of(found));
    if (found != nullptr && found->last) {
        write_reason(json, found->last->outcome);
        json.key("since").value(utc_timestamp(found->since));
    } else {
        json.key("reason").null().key("detail").value("").key("since").null();
    }
    const std::optional<RunResult> none;
    write_optional_run(json, "last_run", found ? found->last : none, WithTranscript::no);
    write_optional_run(json, "last_failure", found ? found->last_failure : none,
                       WithTranscript::no);
    write_history(json, found ? found->history : RunHistory());
    json.end_object();
}

http::Response json_response(unsigned status, std::string body) {
    auto response = http::plain_text(status, std::move(body));
    response.content_type = "application/json";
    // Each answer is the state of now: a cached one would show an outage that has ended.
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
}

http::Response json_error(unsigned status, std::string_view reason) {
    JsonWriter json;
    json.begin_object().key("error").value(reason).end_object();
    return json_response(status, json.text());
}

http::Response status(const StatusView& view) {
    JsonWriter json;
    json.begin_object();
    json.key("generated").value(utc_timestamp(view.now));
    json.key("config_file").value(view.config.source_path);
    json.key("runs").begin_object();
    json.key("in_flight").value(static_cast<std::int64_t>(view.slots.in_flight));
    json.key("queued").value(static_cast<std::int64_t>(view.slots.queued));
    json.key("limit").value(static_cast<std::int64_t>(view.slots.limit));
    json.end_object();
    json.key("probes").begin_array();
    for (const auto& target : view.config.targets) {
        for (const auto& probe : target.probes) {
            write_probe_status(json, target, probe,
                               view.results.find({target.instance_key(), probe}));
        }
    }
    json.end_array().end_object();
    return json_response(200, json.text());
}

// Whether the instance has every label the request names besides target and probe (e.g.
// ip_family=v6): a request without any gets all the target's instances.
bool selected(const TargetConfig& instance, const http::Request& request) {
    return std::all_of(request.query.begin(), request.query.end(), [&](const auto& parameter) {
        const auto& [name, value] = parameter;
        if (name == "target" || name == "probe") return true;
        return std::find(instance.instance_labels.begin(), instance.instance_labels.end(),
                         std::pair(name, value)) != instance.instance_labels.end();
    });
}

http::Response results(const StatusView& view, const http::Request& request) {
    const auto target_name = request.query.find("target");
    if (target_name == request.query.end()) {
        return json_error(400, "parameter \"target\" is required");
    }
    // Every instance of the target (both families of `ip = "both"`), in the config's order.
    std::vector<const TargetConfig*> instances;
    for (const auto& each : view.config.targets) {
        if (each.name == target_name->second) instances.push_back(&each);
    }
    for (const auto& [name, value] : request.query) {
        const bool label =
            std::any_of(instances.begin(), instances.end(), [&label_name = name](const auto* each) {
                return std::any_of(each->instance_labels.begin(), each->instance_labels.end(),
                                   [&](const auto& pair) { return pair.first == label_name; });
            });
        if (name != "target" && name != "probe" && !label) {
            return json_error(400, "unknown parameter \"" + name +
                                       "\": expected target, probe or a label of the target's "
                                       "instances (ip_family)");
        }
        if (value.empty()) return json_error(400, "parameter \"" + name + "\" is empty");
    }
    if (instances.empty()) {
        return json_error(404, "no target \"" + target_name->second + "\"");
    }
    std::erase_if(instances, [&](const auto* each) { return !selected(*each, request); });
    if (instances.empty()) {
        return json_error(
            404, "target \"" + target_name->second + "\" has no instance with these labels");
    }
    const auto probe_name = request.query.find("probe");
    const auto& probes = instances.front()->probes;  // the same in every instance
    if (probe_name != request.query.end() &&
        std::find(probes.begin(), probes.end(), probe_name->second) == probes.end()) {
        return json_error(404, "target \"" + target_name->second + "\" has no probe \"" +
                                   probe_name->second + "\"");
    }
    JsonWriter json;
    json.begin_object().key("target").value(target_name->second).key("probes").begin_array();
    for (const TargetConfig* instance : instances) {
        for (const auto& probe : probes) {
            if (probe_name != request.query.end() && probe != probe_name->second) continue;
            const auto* found = view.results.find({instance->instance_key(), probe});
            const std::optional<RunResult> none;
            json.begin_object().key("probe").value(probe);
            write_instance_labels(json, *instance);
            json.key("state").value(state_of(found));
            write_optional_run(json, "last_run", found ? found->last : none, WithTranscript::yes);
            write_optional_run(json, "last_failure", found ? found->last_failure : none,
                               WithTranscript::yes);
            json.end_object();
        }
    }
    json.end_array().end_object();
    return json_response(200, json.text());
}

}  // namespace

bool is_status_api_path(std::string_view path) {
    return path == kStatusPath || path == kResultsPath;
}

http::Response serve_status_api(const StatusView& view, const http::Request& request) {
    if (request.path == kStatusPath) {
        if (!request.query.empty()) {
            return json_error(400, "unknown parameter \"" + request.query.begin()->first +
                                       "\": /api/v1/status takes none");
        }
        return status(view);
    }
    return results(view, request);
}

}  // namespace mailcanary
