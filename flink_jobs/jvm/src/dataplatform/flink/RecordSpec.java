package dataplatform.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A record contract as field checks: which fields, of which kind, in which order (the first failing check
 * gives the reason), which ones are the id, the key and the event time. Rendered by
 * {@code hybrid_platform.decision_spec} from the Python contract.
 */
public final class RecordSpec implements Serializable {
    private static final long serialVersionUID = 1L;

    /** One field of the record, checked in declaration order (the first failure is the reason). */
    public static final class Field implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String name;
        public final String kind; // uuid | identifier | digits | decimal | code | epoch_ms | boolean
        public final int maxLength; // identifier
        public final int length; // digits
        public final int scale; // decimal
        public final int precision; // decimal: digits in all (SQL DECIMAL(precision, scale))
        public final String max; // decimal, as text
        public final List<String> values; // code
        public final Map<String, Integer> index; // code -> position in values
        public final String unknown; // code: the reason detail for a value not in values
        public final long min; // epoch_ms
        public final String minReason; // epoch_ms
        public final long maxAheadMs; // epoch_ms: relative to the clock (-1: use maxAbsolute)
        public final long maxAbsolute; // epoch_ms
        /** Position in {@link Event#text} (strings) or {@link Event#num} (numbers, booleans). */
        public int slot;

        Field(Map<String, Object> raw) {
            name = Spec.str(raw, "name");
            kind = Spec.str(raw, "kind");
            maxLength = (int) Spec.integer(raw, "max_length", 0);
            length = (int) Spec.integer(raw, "length", 0);
            scale = (int) Spec.integer(raw, "scale", 0);
            precision = (int) Spec.integer(raw, "precision", 38);
            max = raw.containsKey("max") ? raw.get("max").toString() : null;
            values = raw.containsKey("values") ? Spec.strings(raw.get("values")) : Collections.emptyList();
            Map<String, Integer> positions = new HashMap<>();
            for (int i = 0; i < values.size(); i++) {
                positions.put(values.get(i), i);
            }
            index = positions;
            unknown = raw.containsKey("unknown") ? Spec.str(raw, "unknown") : "unknown value";
            min = Spec.integer(raw, "min", Long.MIN_VALUE);
            minReason = raw.containsKey("min_reason") ? Spec.str(raw, "min_reason") : "too small";
            maxAheadMs = Spec.integer(raw, "max_ahead_ms", -1);
            maxAbsolute = Spec.integer(raw, "max", Long.MAX_VALUE);
        }

        public boolean isText() {
            return kind.equals("uuid") || kind.equals("identifier") || kind.equals("digits") || kind.equals("code");
        }
    }

    public final String recordName;
    public final int maxRecordBytes;
    public final List<Field> fields = new ArrayList<>();
    public final List<String> knownFields;
    public final String idField;
    public final String keyField;
    public final String timeField;
    public final int textSlots;
    public final int numSlots;
    public final Field id;
    public final Field key;
    public final Field time;

    public RecordSpec(Map<String, Object> record) {
        recordName = Spec.str(record, "name");
        maxRecordBytes = (int) Spec.integer(record, "max_bytes", 65536);
        knownFields = Spec.strings(record.get("known_fields"));
        idField = Spec.str(record, "id");
        keyField = record.containsKey("key") ? Spec.str(record, "key") : null;
        timeField = record.containsKey("time") ? Spec.str(record, "time") : null;
        int text = 0;
        int num = 0;
        for (Object raw : (List<?>) record.get("fields")) {
            Field field = new Field(Spec.map(raw));
            field.slot = field.isText() ? text++ : num++;
            fields.add(field);
        }
        textSlots = text;
        numSlots = num;
        id = field(idField);
        key = keyField == null ? null : field(keyField);
        time = timeField == null ? null : field(timeField);
    }

    public static RecordSpec parse(String json) {
        try {
            return new RecordSpec(Spec.map(Json.parse(json)));
        } catch (Json.SyntaxError | Json.DuplicateKey e) {
            throw new IllegalArgumentException("record spec is not valid JSON: " + e.getMessage());
        }
    }

    public Field field(String name) {
        for (Field field : fields) {
            if (field.name.equals(name)) {
                return field;
            }
        }
        throw new IllegalArgumentException("the record has no field " + name);
    }
}
