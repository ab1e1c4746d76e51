package dataplatform.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The decision spec: what records look like, which features, rules and model inputs score them.
 *
 * <p>Rendered as JSON by the Python definitions ({@code hybrid_platform.decision_spec.render()}), which
 * stay the one source: the same definitions drive the Python parser, Spark's training features and the
 * SQL renderings. Nothing here is specific to one domain; the example's names arrive as data.
 */
public final class Spec implements Serializable {

    private static final long serialVersionUID = 1L;

    /** ``function(column)`` over the key's events with time in {@code (t - seconds, t]}. */
    public static final class Window implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String name;
        public final String function; // COUNT | SUM | COUNT_DISTINCT
        public final String column; // null for COUNT
        public final long millis;

        Window(Map<String, Object> raw) {
            name = str(raw, "name");
            function = str(raw, "function");
            column = raw.get("column") == Json.NULL ? null : (String) raw.get("column");
            millis = integer(raw, "seconds", 0) * 1000L;
        }
    }

    /** One comparison of a rule: {@code input op value}; inputs are features or record fields. */
    public static final class Condition implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String input;
        public final String op; // >= | > | <= | < | in
        public final double value;
        public final List<String> values;

        Condition(Map<String, Object> raw) {
            input = str(raw, "input");
            op = str(raw, "op");
            value = raw.containsKey("value") ? Double.parseDouble(raw.get("value").toString()) : Double.NaN;
            values = raw.containsKey("values") ? strings(raw.get("values")) : Collections.emptyList();
        }
    }

    public static final class Rule implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String name;
        public final double weight;
        public final List<Condition> conditions = new ArrayList<>();

        Rule(Map<String, Object> raw) {
            name = str(raw, "name");
            weight = Double.parseDouble(raw.get("weight").toString());
            for (Object condition : (List<?>) raw.get("conditions")) {
                conditions.add(new Condition(map(condition)));
            }
        }
    }

    /** A model input derived from the record: {@code log1p}, {@code one_hot}, {@code in_set}, {@code indicator}. */
    public static final class ModelInput implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String kind;
        public final String field;
        public final String name; // log1p, in_set
        public final List<String> values; // one_hot, in_set

        ModelInput(Map<String, Object> raw) {
            kind = str(raw, "kind");
            field = str(raw, "field");
            name = raw.containsKey("name") ? str(raw, "name") : null;
            values = raw.containsKey("values") ? strings(raw.get("values")) : Collections.emptyList();
        }
    }

    /** The record the job reads (the transaction), and shortcuts into it. */
    public final RecordSpec record;
    public final List<RecordSpec.Field> fields;
    public final String idField;
    public final String keyField;
    public final String timeField;
    public final int textSlots;
    public final int numSlots;
    public final RecordSpec.Field id;
    public final RecordSpec.Field key;
    public final RecordSpec.Field time;

    public final String featureSpecVersion;
    public final List<Window> windows = new ArrayList<>();
    public final String gapFeature;
    public final long horizonMs; // the gap is -1 beyond it; history older than it is evicted
    public final long allowedLatenessMs; // history kept this much longer, so late events see full windows
    public final long maxAheadMs; // event times beyond the clock by more do not move eviction
    public final int maxEventsPerKey;
    public final List<String> featureNames = new ArrayList<>();
    /** History columns: the distinct window columns, in first-use order. */
    public final List<String> historyColumns = new ArrayList<>();

    public final List<Rule> rules = new ArrayList<>();
    public final List<ModelInput> modelInputs = new ArrayList<>();
    public final double reviewThreshold;
    public final double declineThreshold;
    public final String modelReasonPrefix;
    public final String rulesOnlyVersion;

    public Spec(String json) {
        Map<String, Object> root;
        try {
            root = map(Json.parse(json));
        } catch (Json.SyntaxError | Json.DuplicateKey e) {
            throw new IllegalArgumentException("decision spec is not valid JSON: " + e.getMessage());
        }
        record = new RecordSpec(map(root.get("record")));
        fields = record.fields;
        idField = record.idField;
        keyField = record.keyField;
        timeField = record.timeField;
        textSlots = record.textSlots;
        numSlots = record.numSlots;
        id = record.id;
        key = record.key;
        time = record.time;

        Map<String, Object> features = map(root.get("features"));
        featureSpecVersion = str(features, "version");
        for (Object raw : (List<?>) features.get("windows")) {
            Window window = new Window(map(raw));
            windows.add(window);
            featureNames.add(window.name);
            if (window.column != null && !historyColumns.contains(window.column)) {
                historyColumns.add(window.column);
            }
        }
        gapFeature = str(features, "gap");
        featureNames.add(gapFeature);
        horizonMs = integer(features, "horizon_seconds", 3600) * 1000L;
        allowedLatenessMs = integer(features, "allowed_lateness_seconds", 300) * 1000L;
        maxAheadMs = integer(features, "max_ahead_seconds", 60) * 1000L;
        maxEventsPerKey = (int) integer(features, "max_events_per_key", 4096);

        Map<String, Object> scoring = map(root.get("scoring"));
        for (Object raw : (List<?>) scoring.get("rules")) {
            rules.add(new Rule(map(raw)));
        }
        for (Object raw : (List<?>) scoring.get("model_inputs")) {
            modelInputs.add(new ModelInput(map(raw)));
        }
        reviewThreshold = Double.parseDouble(scoring.get("review_threshold").toString());
        declineThreshold = Double.parseDouble(scoring.get("decline_threshold").toString());
        modelReasonPrefix = str(scoring, "model_reason_prefix");
        rulesOnlyVersion = str(scoring, "rules_only_version");
        for (String column : historyColumns) {
            RecordSpec.Field field = field(column);
            if (!field.kind.equals("decimal") && !field.kind.equals("code")) {
                throw new IllegalArgumentException("window column " + column + " must be a decimal or a code field");
            }
        }
    }

    public RecordSpec.Field field(String name) {
        return record.field(name);
    }

    // --- small readers ------------------------------------------------------------------------------

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object value) {
        if (!(value instanceof Map)) {
            throw new IllegalArgumentException("expected a JSON object, got " + value);
        }
        return (Map<String, Object>) value;
    }

    static String str(Map<String, Object> raw, String key) {
        Object value = raw.get(key);
        if (!(value instanceof String)) {
            throw new IllegalArgumentException("expected a string for " + key + ", got " + value);
        }
        return (String) value;
    }

    static long integer(Map<String, Object> raw, String key, long fallback) {
        Object value = raw.get(key);
        if (value == null || value == Json.NULL) {
            return fallback;
        }
        return Long.parseLong(value.toString());
    }

    static List<String> strings(Object value) {
        List<String> out = new ArrayList<>();
        for (Object item : (List<?>) value) {
            out.add((String) item);
        }
        return out;
    }

    /** Settings of one job run (topics, Kafka, registry), rendered by the Python job as JSON. */
    public static Map<String, Object> settings(String json) {
        try {
            return map(Json.parse(json));
        } catch (Json.SyntaxError | Json.DuplicateKey e) {
            throw new IllegalArgumentException("job settings are not valid JSON: " + e.getMessage());
        }
    }

    static Map<String, String> stringMap(Object value) {
        Map<String, String> out = new LinkedHashMap<>();
        if (value == null || value == Json.NULL) {
            return out;
        }
        for (Map.Entry<String, Object> entry : map(value).entrySet()) {
            out.put(entry.getKey(), entry.getValue().toString());
        }
        return out;
    }
}
