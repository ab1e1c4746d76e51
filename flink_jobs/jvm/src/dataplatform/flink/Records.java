package dataplatform.flink;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

/**
 * The JSON records the scoring job writes: decisions, alerts and dead letters.
 *
 * <p>Alerts and dead letters have the shape {@code hybrid_platform.events.alert_record} and
 * {@code dlq_record} give them (the contract in {@code schemas/}); a decision adds what was served:
 * the decision, the features and where the input came from.
 */
public final class Records {
    private Records() {}

    /** What the keyed operator emits for one input: the key, the decision, and the alert if it is one. */
    public static final class Decision {
        public byte[] key;
        public byte[] decision;
        public byte[] alert; // null below the review threshold

        public Decision() {}
    }

    private static void field(StringBuilder out, String name) {
        if (out.length() > 1) {
            out.append(',');
        }
        Json.quote(out, name);
        out.append(':');
    }

    private static void strings(StringBuilder out, List<String> values) {
        out.append('[');
        for (int i = 0; i < values.size(); i++) {
            if (i > 0) {
                out.append(',');
            }
            Json.quote(out, values.get(i));
        }
        out.append(']');
    }

    private static void score(StringBuilder out, double score) {
        double rounded = Scorer.round6(score);
        if (!(rounded >= 0.0 && rounded <= 1.0)) {
            throw new IllegalStateException("score " + score + " is outside [0, 1]"); // a bug, never data
        }
        Json.number(out, rounded);
    }

    public static byte[] decision(Spec spec, Event event, double[] features, Scorer.Result result, long scoredAt) {
        StringBuilder out = new StringBuilder(512).append('{');
        field(out, spec.idField);
        Json.quote(out, event.text[spec.id.slot]);
        field(out, spec.keyField);
        Json.quote(out, event.text[spec.key.slot]);
        field(out, "score");
        score(out, result.score);
        field(out, "decision");
        Json.quote(out, result.decision);
        field(out, "reasons");
        strings(out, result.reasons);
        field(out, "model_version");
        Json.quote(out, result.modelVersion);
        field(out, "feature_spec_version");
        Json.quote(out, spec.featureSpecVersion);
        field(out, "features");
        out.append('{');
        for (int i = 0; i < features.length; i++) {
            if (i > 0) {
                out.append(',');
            }
            Json.quote(out, spec.featureNames.get(i));
            out.append(':');
            Json.number(out, features[i]);
        }
        out.append('}');
        field(out, spec.timeField);
        out.append(event.num[spec.time.slot]);
        field(out, "scored_at");
        out.append(scoredAt);
        field(out, "source_partition");
        out.append(event.partition);
        field(out, "source_offset");
        out.append(event.offset);
        field(out, "source_ts");
        out.append(event.sourceTs);
        return out.append('}').toString().getBytes(StandardCharsets.UTF_8);
    }

    public static byte[] alert(Spec spec, Event event, Scorer.Result result, long scoredAt) {
        StringBuilder out = new StringBuilder(256).append('{');
        field(out, spec.idField);
        Json.quote(out, event.text[spec.id.slot]);
        field(out, spec.keyField);
        Json.quote(out, event.text[spec.key.slot]);
        field(out, "score");
        score(out, result.score);
        field(out, "reasons");
        strings(out, result.reasons);
        field(out, "model_version");
        Json.quote(out, result.modelVersion);
        field(out, spec.timeField);
        out.append(event.num[spec.time.slot]);
        field(out, "scored_at");
        out.append(scoredAt);
        return out.append('}').toString().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * {@code [original, encoding]}: the record as text, or base64 when it is not valid UTF-8 or when JSON
     * escaping would grow it more than base64 does (as {@code events.original_text}).
     */
    public static String[] originalText(byte[] raw) {
        if (raw == null) {
            return new String[] {"", "utf-8"};
        }
        String encoded = Base64.getEncoder().encodeToString(raw);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(raw))
                    .toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            return new String[] {encoded, "base64"};
        }
        return Json.escapedUtf8Length(text) <= encoded.length()
                ? new String[] {text, "utf-8"}
                : new String[] {encoded, "base64"};
    }

    /** As events.DLQ_MAX_ORIGINAL_BYTES: a record compressed small can be huge unpacked; its DLQ copy must fit. */
    public static final int MAX_ORIGINAL_BYTES = 1_048_588;

    public static byte[] deadLetter(byte[] raw, String reason, String topic, int partition, long offset,
            long receivedAt) {
        if (raw != null && raw.length > MAX_ORIGINAL_BYTES) {
            reason = reason + "; original truncated to its first " + MAX_ORIGINAL_BYTES + " of " + raw.length
                    + " bytes, sha256 " + sha256(raw);
            raw = java.util.Arrays.copyOf(raw, MAX_ORIGINAL_BYTES);
        }
        String[] original = originalText(raw);
        StringBuilder out = new StringBuilder(original[0].length() + 200).append('{');
        field(out, "original");
        Json.quote(out, original[0]);
        field(out, "original_encoding");
        Json.quote(out, original[1]);
        field(out, "reason");
        Json.quote(out, reason);
        field(out, "source_topic");
        Json.quote(out, topic);
        field(out, "source_partition");
        out.append(partition);
        field(out, "source_offset");
        out.append(offset);
        field(out, "received_at");
        out.append(receivedAt);
        return out.append('}').toString().getBytes(StandardCharsets.UTF_8);
    }

    static String sha256(byte[] data) {
        try {
            byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(data);
            StringBuilder hex = new StringBuilder(64);
            for (byte b : digest) {
                hex.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
            }
            return hex.toString();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
