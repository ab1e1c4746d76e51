package dataplatform.flink;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Strict JSON, read the way Python's {@code json.loads} reads it in {@code hybrid_platform.events}.
 *
 * <p>The record parser must give the same verdict as the Python parser on every input (a conformance
 * test runs both over the malformed corpus and generated records), so this follows Python's decisions,
 * not a general JSON library's: whitespace is only space, tab, CR and LF; control characters inside
 * strings are errors; NaN and Infinity are errors; a repeated key is reported when its object closes
 * (Python's {@code object_pairs_hook} runs then, so a syntax error earlier in the same object wins);
 * numbers keep their literal text (the field checks decide what a number means). Nesting deeper than
 * {@link #MAX_NESTING} is refused before parsing, as in Python.
 */
public final class Json {
    /** Deepest nesting of objects and arrays a record may have (the Python parser uses the same bound). */
    public static final int MAX_NESTING = 64;

    /** JSON {@code null}. */
    public static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    /** A number as written: the field checks interpret the literal (integers, decimals, exponents). */
    public static final class Num {
        public final String literal;
        public final boolean integral; // no fraction and no exponent: Python parses it as an int

        Num(String literal, boolean integral) {
            this.literal = literal;
            this.integral = integral;
        }

        @Override
        public String toString() {
            return literal;
        }
    }

    /** A syntax error: the record is not JSON (Python: {@code invalid_json}). */
    public static final class SyntaxError extends Exception {
        SyntaxError(String message) {
            super(message, null, false, false);
        }
    }

    /** An object names a key twice; {@code key} is the first repeated one in the order written. */
    public static final class DuplicateKey extends Exception {
        public final String key;

        DuplicateKey(String key) {
            super(key, null, false, false);
            this.key = key;
        }
    }

    private final String text;
    private int pos;

    private Json(String text) {
        this.text = text;
    }

    /** True when objects and arrays nest deeper than {@code limit} (brackets inside strings do not count). */
    public static boolean tooDeep(String text, int limit) {
        int depth = 0;
        boolean inString = false;
        boolean escaped = false;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (inString) {
                if (escaped) {
                    escaped = false;
                } else if (c == '\\') {
                    escaped = true;
                } else if (c == '"') {
                    inString = false;
                }
            } else if (c == '"') {
                inString = true;
            } else if (c == '{' || c == '[') {
                if (++depth > limit) {
                    return true;
                }
            } else if ((c == '}' || c == ']') && depth > 0) {
                depth--;
            }
        }
        return false;
    }

    /**
     * The value of {@code text}: a {@code Map<String,Object>} (insertion-ordered), {@code List<Object>},
     * {@code String}, {@code Boolean}, {@link Num} or {@link #NULL}.
     */
    public static Object parse(String text) throws SyntaxError, DuplicateKey {
        if (tooDeep(text, MAX_NESTING)) {
            throw new SyntaxError("nested deeper than " + MAX_NESTING);
        }
        Json reader = new Json(text);
        reader.skipWhitespace();
        Object value = reader.value();
        reader.skipWhitespace();
        if (reader.pos != text.length()) {
            throw new SyntaxError("extra data at " + reader.pos);
        }
        return value;
    }

    private void skipWhitespace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }

    private SyntaxError error(String what) {
        return new SyntaxError(what + " at " + pos);
    }

    private Object value() throws SyntaxError, DuplicateKey {
        if (pos >= text.length()) {
            throw error("expecting a value");
        }
        char c = text.charAt(pos);
        switch (c) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", NULL);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw error("expecting a value");
        }
    }

    private Object literal(String word, Object value) throws SyntaxError {
        if (!text.startsWith(word, pos)) {
            throw error("expecting a value");
        }
        pos += word.length();
        return value;
    }

    private Map<String, Object> object() throws SyntaxError, DuplicateKey {
        pos++; // '{'
        List<String> keys = new ArrayList<>();
        List<Object> values = new ArrayList<>();
        skipWhitespace();
        if (pos < text.length() && text.charAt(pos) == '}') {
            pos++;
            return new LinkedHashMap<>();
        }
        while (true) {
            if (pos >= text.length() || text.charAt(pos) != '"') {
                throw error("expecting a property name");
            }
            keys.add(string());
            skipWhitespace();
            if (pos >= text.length() || text.charAt(pos) != ':') {
                throw error("expecting ':'");
            }
            pos++;
            skipWhitespace();
            values.add(value());
            skipWhitespace();
            if (pos >= text.length()) {
                throw error("unterminated object");
            }
            char c = text.charAt(pos++);
            if (c == '}') {
                break;
            }
            if (c != ',') {
                throw error("expecting ',' or '}'");
            }
            skipWhitespace();
        }
        // Python's object_pairs_hook sees the object once it is complete: duplicates are found here.
        Map<String, Object> result = new LinkedHashMap<>();
        HashSet<String> seen = new HashSet<>();
        for (int i = 0; i < keys.size(); i++) {
            String key = keys.get(i);
            if (!seen.add(key)) {
                throw new DuplicateKey(key);
            }
            result.put(key, values.get(i));
        }
        return result;
    }

    private List<Object> array() throws SyntaxError, DuplicateKey {
        pos++; // '['
        List<Object> items = new ArrayList<>();
        skipWhitespace();
        if (pos < text.length() && text.charAt(pos) == ']') {
            pos++;
            return items;
        }
        while (true) {
            skipWhitespace();
            items.add(value());
            skipWhitespace();
            if (pos >= text.length()) {
                throw error("unterminated array");
            }
            char c = text.charAt(pos++);
            if (c == ']') {
                return items;
            }
            if (c != ',') {
                throw error("expecting ',' or ']'");
            }
        }
    }

    private String string() throws SyntaxError {
        pos++; // opening quote
        StringBuilder out = null;
        int start = pos;
        while (true) {
            if (pos >= text.length()) {
                throw error("unterminated string");
            }
            char c = text.charAt(pos);
            if (c == '"') {
                String result = out == null ? text.substring(start, pos) : out.append(text, start, pos).toString();
                pos++;
                return result;
            }
            if (c < 0x20) {
                throw error("control character in string");
            }
            if (c != '\\') {
                pos++;
                continue;
            }
            if (out == null) {
                out = new StringBuilder();
            }
            out.append(text, start, pos);
            pos++;
            if (pos >= text.length()) {
                throw error("unterminated escape");
            }
            char e = text.charAt(pos++);
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out.append(e);
                    break;
                case 'b':
                    out.append('\b');
                    break;
                case 'f':
                    out.append('\f');
                    break;
                case 'n':
                    out.append('\n');
                    break;
                case 'r':
                    out.append('\r');
                    break;
                case 't':
                    out.append('\t');
                    break;
                case 'u':
                    // A surrogate pair of two escapes becomes one code point, a lone surrogate stays lone:
                    // UTF-16 code units appended in order give exactly that.
                    out.append((char) hex4());
                    break;
                default:
                    throw error("invalid escape");
            }
            start = pos;
        }
    }

    private int hex4() throws SyntaxError {
        if (pos + 4 > text.length()) {
            throw error("invalid \\u escape");
        }
        int value = 0;
        for (int i = 0; i < 4; i++) {
            int digit = Character.digit(text.charAt(pos + i), 16);
            char c = text.charAt(pos + i);
            boolean asciiHex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            if (digit < 0 || !asciiHex) {
                throw error("invalid \\u escape");
            }
            value = value * 16 + digit;
        }
        pos += 4;
        return value;
    }

    private Num number() throws SyntaxError {
        int start = pos;
        if (text.charAt(pos) == '-') {
            pos++;
        }
        if (pos >= text.length() || !isDigit(text.charAt(pos))) {
            throw error("expecting a value");
        }
        if (text.charAt(pos) == '0') {
            pos++;
        } else {
            while (pos < text.length() && isDigit(text.charAt(pos))) {
                pos++;
            }
        }
        boolean integral = true;
        if (pos + 1 < text.length() && text.charAt(pos) == '.' && isDigit(text.charAt(pos + 1))) {
            integral = false;
            pos += 2;
            while (pos < text.length() && isDigit(text.charAt(pos))) {
                pos++;
            }
        }
        if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
            int mark = pos;
            int p = pos + 1;
            if (p < text.length() && (text.charAt(p) == '+' || text.charAt(p) == '-')) {
                p++;
            }
            if (p < text.length() && isDigit(text.charAt(p))) {
                integral = false;
                while (p < text.length() && isDigit(text.charAt(p))) {
                    p++;
                }
                pos = p;
            } else {
                pos = mark; // not an exponent: what follows is extra data, an error at the caller
            }
        }
        return new Num(text.substring(start, pos), integral);
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    // --- writing ------------------------------------------------------------------------------------

    /** {@code value} as a JSON string literal, escaped as Python's {@code json.dumps(ensure_ascii=False)}. */
    public static void quote(StringBuilder out, String value) {
        out.append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /** Bytes of {@code value} JSON-escaped in UTF-8, without the quotes (what Python's DLQ size check counts). */
    public static long escapedUtf8Length(String value) {
        long total = 0;
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
                total += 2;
            } else if (c < 0x20) {
                total += 6;
            } else if (c < 0x80) {
                total += 1;
            } else if (c < 0x800) {
                total += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < value.length()
                    && Character.isLowSurrogate(value.charAt(i + 1))) {
                total += 4;
                i++;
            } else {
                total += 3;
            }
        }
        return total;
    }

    /** A finite double as JSON (Java's shortest round-trip form; integral values keep ".0"). */
    public static void number(StringBuilder out, double value) {
        if (!Double.isFinite(value)) {
            throw new IllegalArgumentException("not a finite number: " + value);
        }
        out.append(Double.toString(value));
    }
}
