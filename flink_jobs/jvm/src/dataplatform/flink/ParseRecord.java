package dataplatform.flink;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.InputTypeStrategies;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.types.Row;

/**
 * {@code parse(raw BYTES) -> ROW<ok, reason, <the record's fields>, original, original_encoding, received_at>}:
 * the record parser as a SQL function, for jobs that land records as they are ({@code lake_ingest}).
 *
 * <p>Same verdicts as the scoring job and the Python contract; a rejected record keeps its original
 * (text, or base64 when not UTF-8) for the dead-letter table. Constructed with a record spec's JSON
 * ({@code hybrid_platform.decision_spec.record_spec_json}), so one class parses any declared record.
 */
public final class ParseRecord extends ScalarFunction {
    private static final long serialVersionUID = 1L;
    private final String specJson;
    private transient RecordSpec spec;
    private transient RecordParser parser;

    public ParseRecord(String specJson) {
        this.specJson = specJson;
    }

    private RecordSpec spec() {
        if (spec == null) {
            spec = RecordSpec.parse(specJson);
        }
        return spec;
    }

    @Override
    public void open(FunctionContext context) {
        parser = new RecordParser(spec());
    }

    public Row eval(byte[] raw) {
        RecordSpec record = spec();
        Event event = new Event(record.textSlots, record.numSlots);
        long now = System.currentTimeMillis();
        String reason = parser.parse(raw, now, event);
        Object[] values = new Object[record.fields.size() + 5];
        values[0] = reason == null;
        values[1] = reason;
        if (reason == null) {
            for (int i = 0; i < record.fields.size(); i++) {
                RecordSpec.Field field = record.fields.get(i);
                values[2 + i] = value(field, event);
            }
        } else {
            String[] original = Records.originalText(raw);
            values[values.length - 3] = original[0];
            values[values.length - 2] = original[1];
            values[values.length - 1] = now;
        }
        return Row.of(values);
    }

    private static Object value(RecordSpec.Field field, Event event) {
        switch (field.kind) {
            case "decimal":
                return BigDecimal.valueOf(event.num[field.slot], field.scale);
            case "epoch_ms":
                return event.num[field.slot];
            case "boolean":
                return event.num[field.slot] != 0;
            default:
                return event.text[field.slot];
        }
    }

    private static DataType type(RecordSpec.Field field) {
        switch (field.kind) {
            case "decimal":
                return DataTypes.DECIMAL(field.precision, field.scale);
            case "epoch_ms":
                return DataTypes.BIGINT();
            case "boolean":
                return DataTypes.BOOLEAN();
            default:
                return DataTypes.STRING();
        }
    }

    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        List<DataTypes.Field> row = new ArrayList<>();
        row.add(DataTypes.FIELD("ok", DataTypes.BOOLEAN()));
        row.add(DataTypes.FIELD("reason", DataTypes.STRING()));
        for (RecordSpec.Field field : spec().fields) {
            row.add(DataTypes.FIELD(field.name, type(field)));
        }
        row.add(DataTypes.FIELD("original", DataTypes.STRING()));
        row.add(DataTypes.FIELD("original_encoding", DataTypes.STRING()));
        row.add(DataTypes.FIELD("received_at", DataTypes.BIGINT()));
        DataType output = DataTypes.ROW(row.toArray(new DataTypes.Field[0])).bridgedTo(Row.class);
        return TypeInference.newBuilder()
                .inputTypeStrategy(InputTypeStrategies.explicitSequence(DataTypes.BYTES()))
                .outputTypeStrategy(context -> Optional.of(output))
                .build();
    }
}
