#include "agent/waterfall_render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/duration.hpp"
#include "common/json_writer.hpp"
#include "common/text.hpp"
#include "probes/probe_kind.hpp"

namespace mailcanary {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBarWidth = 30;
constexpr std::size_t kReplyWidth = 56;

std::string_view tls_name(TlsMode tls) {
    switch (tls) {
        case TlsMode::none:
            return "none";
        case TlsMode::starttls:
            return "starttls";
        case TlsMode::implicit:
            return "implicit";
    }
    return "";
}

std::string_view direction_name(Transcript::Direction direction) {
    switch (direction) {
        case Transcript::Direction::client:
            return "client";
        case Transcript::Direction::server:
            return "server";
        case Transcript::Direction::note:
            return "note";
    }
    return "";
}

// "ddd-": a line of an SMTP reply that more lines follow.
bool continues(const std::string& line) {
    return line.size() >= 4 && line[3] == '-' &&
           std::all_of(line.begin(), line.begin() + 3, [](char c) { return c >= '0' && c <= '9'; });
}

// When each span ends: the next one's start (a reply read in a phase is taken in before the next
// begins), the run's end for the last.
Clock::time_point window_end(const OneRun& run, std::size_t index) {
    const auto& spans = run.metrics.phase_spans;
    return index + 1 < spans.size() ? spans[index + 1].started : run.started + run.elapsed;
}

std::string utc_date(std::chrono::system_clock::time_point when, bool with_time) {
    const std::time_t time = std::chrono::system_clock::to_time_t(when);
    std::tm utc{};
    gmtime_r(&time, &utc);
    char text[32];
    std::strftime(text, sizeof text, with_time ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d", &utc);
    return text;
}

std::string expiry_words(std::chrono::system_clock::time_point not_after) {
    const auto days =
        std::chrono::duration_cast<std::chrono::hours>(not_after - std::chrono::system_clock::now())
            .count() /
        24;
    if (not_after < std::chrono::system_clock::now())
        return "expired " + std::to_string(-days) + " days ago";
    return "expires in " + std::to_string(days) + " days";
}

std::string clipped(std::string text, std::size_t width) {
    if (text.size() > width) text = text.substr(0, width - 3) + "...";
    return text;
}

// The bar of one span on a line kBarWidth wide that stands for the whole run.
std::string bar(const OneRun& run, const PhaseSpan& span) {
    const double total = std::max<double>(1, static_cast<double>(run.elapsed.count()));
    const auto column = [&](Clock::duration at) {
        return std::min<std::size_t>(
            kBarWidth, static_cast<std::size_t>(std::max(0.0, static_cast<double>(at.count())) /
                                                total * kBarWidth));
    };
    const std::size_t start = std::min(column(span.started - run.started), kBarWidth - 1);
    const std::size_t end = std::max(
        start + 1, std::min(kBarWidth, column(span.started - run.started + span.duration)));
    return std::string(start, ' ') + std::string(end - start, '#') +
           std::string(kBarWidth - end, ' ');
}

// "  name          value", the value lined up with the phases' durations.
void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += "  ";
    out += name;
    out += std::string(name.size() < 14 ? 14 - name.size() : 1, ' ');
    out += value;
    out += '\n';
}

std::string outcome_words(const Outcome& outcome) {
    if (outcome.success()) return "success";
    if (!outcome.failure) return "cancelled";
    return "failed: " + std::string(to_string(*outcome.failure));
}

void append_text_run(std::string& out, const OneRun& run, bool verbose) {
    out += std::string(run.probe->name()) + "  " + outcome_words(run.outcome) + " in " +
           format_milliseconds(run.elapsed) + "\n";
    const auto& spans = run.metrics.phase_spans;
    for (std::size_t index = 0; index < spans.size(); ++index) {
        const PhaseSpan& span = spans[index];
        std::string reply = reply_between(run, span.started, window_end(run, index));
        // The phase a failed run ended in may have no reply: what failed says what happened.
        if (reply.empty() && index + 1 == spans.size() && run.outcome.failure)
            reply = run.outcome.detail;
        char head[64];
        std::snprintf(head, sizeof head, "  %-13s %9s  ",
                      std::string(to_string(span.phase)).c_str(),
                      format_milliseconds(span.duration).c_str());
        out += head + bar(run, span) + "  " + clipped(reply, kReplyWidth) + "\n";
    }
    if (const auto& certificate = run.metrics.certificate) {
        append_field(out, "certificate", certificate->subject);
        append_field(out, "  issuer", certificate->issuer);
        std::string names;
        for (const auto& name : certificate->alt_names) names += (names.empty() ? "" : ", ") + name;
        append_field(out, "  names", names.empty() ? "(none)" : names);
        append_field(out, "  valid",
                     utc_date(certificate->not_before, false) + " to " +
                         utc_date(certificate->not_after, false) + " (" +
                         expiry_words(certificate->not_after) + ")");
    }
    if (run.metrics.tls_version) {
        append_field(out, "tls",
                     *run.metrics.tls_version + " " + run.metrics.tls_cipher.value_or(""));
    }
    append_field(out, "outcome", outcome_words(run.outcome));
    if (!run.outcome.detail.empty()) append_field(out, "reason", run.outcome.detail);
    if (!run.outcome.queue_id.empty()) append_field(out, "queued as", run.outcome.queue_id);
    if (verbose) {
        out += "  transcript:\n";
        std::string transcript = run.transcript.to_text();
        for (std::size_t at = 0; at < transcript.size();) {
            const auto end = std::min(transcript.find('\n', at), transcript.size());
            out += "    " + transcript.substr(at, end - at) + "\n";
            at = end + 1;
        }
    }
}

double seconds(std::chrono::nanoseconds duration) {
    return std::chrono::duration<double>(duration).count();
}

void write_json_run(JsonWriter& json, const OneRun& run, bool verbose) {
    json.begin_object().key("probe").value(run.probe->name());
    json.key("success").value(run.outcome.success());
    json.key("reason");
    if (run.outcome.failure) {
        json.value(to_string(*run.outcome.failure));
    } else {
        json.null();
    }
    json.key("detail").value(run.outcome.detail);
    json.key("duration_seconds").value(seconds(run.elapsed));
    json.key("phases").begin_array();
    const auto& spans = run.metrics.phase_spans;
    for (std::size_t index = 0; index < spans.size(); ++index) {
        json.begin_object().key("phase").value(to_string(spans[index].phase));
        json.key("start_seconds").value(seconds(spans[index].started - run.started));
        json.key("duration_seconds").value(seconds(spans[index].duration));
        json.key("reply").value(reply_between(run, spans[index].started, window_end(run, index)));
        json.end_object();
    }
    json.end_array().key("tls");
    if (run.metrics.tls_version) {
        json.begin_object().key("version").value(*run.metrics.tls_version);
        json.key("cipher").value(run.metrics.tls_cipher.value_or("")).end_object();
    } else {
        json.null();
    }
    json.key("certificate");
    if (const auto& certificate = run.metrics.certificate) {
        json.begin_object().key("subject").value(certificate->subject);
        json.key("issuer").value(certificate->issuer);
        json.key("alt_names").begin_array();
        for (const auto& name : certificate->alt_names) json.value(name);
        json.end_array();
        json.key("not_before").value(utc_date(certificate->not_before, true));
        json.key("not_after").value(utc_date(certificate->not_after, true));
        json.end_object();
    } else {
        json.null();
    }
    json.key("queue_id").value(run.outcome.queue_id);
    if (verbose) {
        json.key("transcript").begin_array();
        for (const auto& entry : run.transcript.entries()) {
            json.begin_object().key("at_seconds").value(seconds(entry.at));
            json.key("direction").value(direction_name(entry.direction));
            json.key("text").value(entry.text).end_object();
        }
        json.end_array();
    }
    json.end_object();
}

}  // namespace

std::string reply_between(const OneRun& run, Clock::time_point from, Clock::time_point to) {
    const auto& entries = run.transcript.entries();
    const auto within = [&](const Transcript::Entry& entry) {
        const auto at = run.started + entry.at;
        return at >= from && at < to;
    };
    std::optional<std::size_t> last_reply;
    std::optional<std::size_t> last_note;
    for (std::size_t index = 0; index < entries.size(); ++index) {
        if (!within(entries[index])) continue;
        if (entries[index].direction == Transcript::Direction::server) last_reply = index;
        if (entries[index].direction == Transcript::Direction::note) last_note = index;
    }
    if (!last_reply) return last_note ? entries[*last_note].text : std::string();
    std::size_t first = *last_reply;
    while (first > 0 && entries[first - 1].direction == Transcript::Direction::server &&
           within(entries[first - 1]) && continues(entries[first - 1].text)) {
        --first;
    }
    return entries[first].text;
}

std::string render_check_text(const TargetConfig& target, std::span<const OneRun> runs,
                              bool verbose) {
    std::string out =
        "mailcanary check " + target.name + " (tls " + std::string(tls_name(target.tls)) + ")\n";
    for (const OneRun& run : runs) {
        out += '\n';
        append_text_run(out, run, verbose);
    }
    return out;
}

std::string render_check_json(const TargetConfig& target, std::span<const OneRun> runs,
                              bool verbose) {
    const bool all_succeeded = std::all_of(runs.begin(), runs.end(),
                                           [](const OneRun& run) { return run.outcome.success(); });
    JsonWriter json;
    json.begin_object().key("target").value(target.name);
    json.key("host").value(target.host);
    json.key("port").value(std::int64_t{target.port});
    json.key("tls").value(tls_name(target.tls));
    json.key("success").value(all_succeeded);
    json.key("probes").begin_array();
    for (const OneRun& run : runs) write_json_run(json, run, verbose);
    json.end_array().end_object();
    return json.text() + "\n";
}

}  // namespace mailcanary
