package dataplatform.flink;

import java.io.Serializable;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Validates one record against the spec's fields and gives the reason a bad one is rejected.
 *
 * <p>Same verdicts and reasons as {@code hybrid_platform.events.parse_transaction} (checked by the
 * conformance tests): {@code empty}, {@code too_large}, {@code invalid_utf8}, {@code invalid_json},
 * {@code duplicate_key[:field]}, {@code not_an_object}, {@code missing_field:<f>},
 * {@code invalid_field:<f>:<detail>}. Never throws on data.
 */
public final class RecordParser implements Serializable {
    private static final long serialVersionUID = 1L;
    /** Integer literals longer than this are out of range for every field (as in Python). */
    static final int MAX_INTEGER_DIGITS = 32;

    private final RecordSpec spec;
    private transient CharsetDecoder decoder;

    public RecordParser(RecordSpec spec) {
        this.spec = spec;
    }

    private static final class FieldError extends Exception {
        FieldError(String reason) {
            super(reason, null, false, false);
        }
    }

    /** Null when {@code raw} is a valid record (then {@code out} holds its fields), else the reason. */
    public String parse(byte[] raw, long nowMs, Event out) {
        try {
            if (raw == null || raw.length == 0) {
                return "empty";
            }
            if (raw.length > spec.maxRecordBytes) {
                return "too_large";
            }
            String text = decode(raw);
            if (text == null) {
                return "invalid_utf8";
            }
            if (allWhitespace(text)) {
                return "empty";
            }
            Object value;
            try {
                value = Json.parse(text);
            } catch (Json.DuplicateKey e) {
                return spec.knownFields.contains(e.key) ? "duplicate_key:" + e.key : "duplicate_key";
            } catch (Json.SyntaxError e) {
                return "invalid_json";
            }
            if (!(value instanceof Map)) {
                return "not_an_object";
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> record = (Map<String, Object>) value;
            for (RecordSpec.Field field : spec.fields) {
                check(field, record, nowMs, out);
            }
            return null;
        } catch (FieldError e) {
            return e.getMessage();
        } catch (RuntimeException e) { // a parser bug must reach the DLQ, not fail the job
            return "parse_error:" + e.getClass().getSimpleName();
        }
    }

    private String decode(byte[] raw) {
        if (decoder == null) {
            decoder = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT);
        }
        try {
            CharBuffer chars = decoder.reset().decode(ByteBuffer.wrap(raw));
            return chars.toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** Python's {@code str.isspace} for one code point (what {@code str.strip()} removes). */
    static boolean isPythonSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0
                || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029
                || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }

    static boolean allWhitespace(String text) {
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            if (!isPythonSpace(cp)) {
                return false;
            }
            i += Character.charCount(cp);
        }
        return true;
    }

    private static FieldError invalid(String name, String detail) {
        return new FieldError("invalid_field:" + name + ":" + detail);
    }

    private static Object required(Map<String, Object> record, String name) throws FieldError {
        Object value = record.get(name);
        if (value == null || value == Json.NULL) {
            throw new FieldError("missing_field:" + name);
        }
        return value;
    }

    private void check(RecordSpec.Field field, Map<String, Object> record, long nowMs, Event out) throws FieldError {
        String name = field.name;
        Object value = required(record, name);
        switch (field.kind) {
            case "uuid":
                out.text[field.slot] = uuid(name, value);
                return;
            case "identifier":
                out.text[field.slot] = identifier(name, value, field.maxLength);
                return;
            case "digits":
                out.text[field.slot] = digits(name, value, field.length);
                return;
            case "code":
                if (!(value instanceof String)) {
                    throw invalid(name, "not a string");
                }
                if (!field.index.containsKey(value)) {
                    throw invalid(name, field.unknown);
                }
                out.text[field.slot] = (String) value;
                return;
            case "decimal":
                out.num[field.slot] = decimal(name, value, field.scale, field.max);
                return;
            case "epoch_ms":
                long latest = field.maxAheadMs >= 0 ? nowMs + field.maxAheadMs : field.maxAbsolute;
                out.num[field.slot] = epochMs(name, value, field.min, field.minReason, latest);
                return;
            case "boolean":
                if (!(value instanceof Boolean)) {
                    throw invalid(name, "not a boolean");
                }
                out.num[field.slot] = ((Boolean) value) ? 1 : 0;
                return;
            default:
                throw new IllegalStateException("unknown field kind " + field.kind);
        }
    }

    private static String uuid(String name, Object value) throws FieldError {
        if (!(value instanceof String) || !isUuid((String) value)) {
            throw invalid(name, "not a uuid");
        }
        return ((String) value).toLowerCase(java.util.Locale.ROOT);
    }

    static boolean isUuid(String s) {
        if (s.length() != 36) {
            return false;
        }
        for (int i = 0; i < 36; i++) {
            char c = s.charAt(i);
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (c != '-') {
                    return false;
                }
            } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
                return false;
            }
        }
        return true;
    }

    private static String identifier(String name, Object value, int maxLength) throws FieldError {
        if (!(value instanceof String)) {
            throw invalid(name, "not a string");
        }
        String s = (String) value;
        if (allWhitespace(s)) {
            throw invalid(name, "empty");
        }
        if (s.codePointCount(0, s.length()) > maxLength) {
            throw invalid(name, "too long");
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                    continue;
                }
                throw invalid(name, "not valid unicode");
            }
            if (Character.isLowSurrogate(c)) {
                throw invalid(name, "not valid unicode");
            }
        }
        return s;
    }

    private static String digits(String name, Object value, int length) throws FieldError {
        if (!(value instanceof String)) {
            throw invalid(name, "not a string");
        }
        String s = (String) value;
        boolean ok = s.codePointCount(0, s.length()) == length;
        for (int i = 0; ok && i < s.length(); i++) {
            ok = s.charAt(i) >= '0' && s.charAt(i) <= '9';
        }
        if (!ok) {
            throw invalid(name, "not " + length + " digits");
        }
        return s;
    }

    /**
     * The value scaled to an integer ({@code 12.30} at scale 2 is {@code 1230}). Works on the literal, so
     * exponents of any size are judged without overflow, like Python's {@code Decimal}.
     */
    static long decimal(String name, Object value, int scale, String max) throws FieldError {
        if (!(value instanceof Json.Num)) {
            throw invalid(name, "not a number");
        }
        String literal = ((Json.Num) value).literal;
        int i = 0;
        boolean negative = literal.charAt(0) == '-';
        if (negative) {
            i++;
        }
        StringBuilder digits = new StringBuilder();
        long exponent = 0;
        while (i < literal.length() && Character.isDigit(literal.charAt(i))) {
            digits.append(literal.charAt(i++));
        }
        if (i < literal.length() && literal.charAt(i) == '.') {
            i++;
            while (i < literal.length() && Character.isDigit(literal.charAt(i))) {
                digits.append(literal.charAt(i++));
                exponent--;
            }
        }
        if (i < literal.length() && (literal.charAt(i) == 'e' || literal.charAt(i) == 'E')) {
            i++;
            exponent = saturatingAdd(exponent, parseExponent(literal.substring(i)));
        }
        // value = digits * 10^exponent; normalise: no leading or trailing zeros in the digits.
        int start = 0;
        while (start < digits.length() && digits.charAt(start) == '0') {
            start++;
        }
        int end = digits.length();
        while (end > start && digits.charAt(end - 1) == '0') {
            end--;
            exponent = saturatingAdd(exponent, 1);
        }
        String significant = digits.substring(start, end);
        if (significant.isEmpty() || negative) {
            throw invalid(name, "not positive");
        }
        // Compare with max (a positive integer) by the number of integer digits, then digit by digit.
        long integerDigits = saturatingAdd(significant.length(), exponent);
        BigInteger maxValue = new BigInteger(max);
        int maxDigits = maxValue.toString().length();
        if (integerDigits > maxDigits) {
            throw invalid(name, "too large");
        }
        if (integerDigits == maxDigits) {
            // Same number of integer digits: compare exactly (the exponent is small here).
            java.math.BigDecimal exact = new java.math.BigDecimal(new BigInteger(significant), (int) -exponent);
            if (exact.compareTo(new java.math.BigDecimal(maxValue)) > 0) {
                throw invalid(name, "too large");
            }
        }
        if (exponent < -scale) {
            throw invalid(name, "more than " + scale + " decimals");
        }
        // Here value <= max with at most `scale` decimals: digits * 10^(exponent + scale) fits a long.
        return Long.parseLong(significant) * pow10((int) (exponent + scale));
    }

    private static long pow10(int n) {
        long result = 1;
        for (int i = 0; i < n; i++) {
            result *= 10;
        }
        return result;
    }

    private static long parseExponent(String text) {
        boolean negative = text.startsWith("-");
        String digits = text.startsWith("-") || text.startsWith("+") ? text.substring(1) : text;
        long value = 0;
        for (int i = 0; i < digits.length(); i++) {
            value = value * 10 + (digits.charAt(i) - '0');
            if (value > 1_000_000_000_000L) { // far beyond any digits a 64 KiB record can hold
                value = 1_000_000_000_000L;
                break;
            }
        }
        return negative ? -value : value;
    }

    private static long saturatingAdd(long a, long b) {
        long sum = a + b;
        if (((a ^ sum) & (b ^ sum)) < 0) {
            return a > 0 ? Long.MAX_VALUE : Long.MIN_VALUE;
        }
        return sum;
    }

    private static long epochMs(String name, Object value, long min, String minReason, long latest)
            throws FieldError {
        if (value instanceof Json.Num) {
            Json.Num number = (Json.Num) value;
            if (number.integral && number.literal.length() > MAX_INTEGER_DIGITS) {
                throw invalid(name, number.literal.startsWith("-") ? minReason : "in the future");
            }
            if (number.integral) {
                BigInteger parsed = new BigInteger(number.literal);
                if (parsed.compareTo(BigInteger.valueOf(min)) < 0) {
                    throw invalid(name, minReason);
                }
                if (parsed.compareTo(BigInteger.valueOf(latest)) > 0) {
                    throw invalid(name, "in the future");
                }
                return parsed.longValueExact();
            }
        }
        throw invalid(name, "not an integer");
    }
}
