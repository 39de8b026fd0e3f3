# cmake -DINPUT=FILE -DOUTPUT=FILE.cpp -DNAME=function -P embed_text.cmake
# Writes a C++ source defining `std::string_view mailcanary::NAME()` that returns FILE's bytes,
# so that an asset (the status page) stays a file of its own in the repository. The bytes go in
# as hexadecimal escapes: no delimiter in the file can end the literal early.
file(READ "${INPUT}" content HEX)
string(REGEX REPLACE "(..)" "\\\\x\\1" escaped "${content}")
# Split every 64 bytes so that no source line is huge (adjacent literals concatenate).
string(REGEX REPLACE "((\\\\x..){64})" "\\1\"\n\"" escaped "${escaped}")
string(LENGTH "${content}" hex_length)
math(EXPR length "${hex_length} / 2")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by embed_text.cmake: edit that file, not this one.\n"
  "#include <string_view>\n\n"
  "namespace mailcanary {\n\n"
  "std::string_view ${NAME}() {\n"
  "    static constexpr char kText[] =\n\"${escaped}\";\n"
  "    return {kText, ${length}};\n"
  "}\n\n"
  "}  // namespace mailcanary\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
