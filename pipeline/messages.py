"""Every message a cell error shows, by key, in every language the engine speaks.

A `CellError` carries a key and the parameters its message needs; the text is made here,
when it is shown (`render`), so a page in another language renders the same error from
the same data. A template is a `str.format` pattern over the parameters. `value` is
always the cell's text as shown (cut at 60 characters); quotes belong to the language.

To add a language, add a table with the same keys (the tests check that they match).
"""

# ruff: noqa: E501  (a translated message reads best on one line, whatever its length)
from __future__ import annotations

from collections.abc import Mapping

DEFAULT_LANGUAGE = "en"

_TYPE_DATETIME = "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)"

ENGLISH: dict[str, str] = {
    "required": "{label} is required, but this cell is empty.",
    # type-error: the cell is not a value of its field's type
    "type.integer": '"{value}" is not a whole number.',
    "type.integer.decimal": '"{value}" is not a whole number (use {decimal!r} for decimals).',
    "type.integer.grouped": (
        '"{value}" is not a whole number (use {decimal!r} for decimals and {group!r} '
        "between thousands)."
    ),
    "type.integer.range": (
        '"{value}" is a whole number beyond the 64 bits loadbay holds (-9223372036854775808 '
        "to 9223372036854775807). Make the field a number, or text, to keep it."
    ),
    "type.number": '"{value}" is not a number.',
    "type.number.decimal": '"{value}" is not a number (use {decimal!r} for decimals).',
    "type.number.grouped": (
        '"{value}" is not a number (use {decimal!r} for decimals and {group!r} between thousands).'
    ),
    "type.number.finite": '"{value}" is not a finite number.',
    "type.boolean": '"{value}" is not one of {allowed}.',
    "type.date": '"{value}" is not a date (use YYYY-MM-DD).',
    "type.date.any": '"{value}" is not a date.',
    "type.date.pattern": '"{value}" is not a date in the form {form}.',
    "type.datetime": f'"{{value}}" {_TYPE_DATETIME}.',
    "type.datetime.any": '"{value}" is not a date and time.',
    "type.datetime.pattern": '"{value}" is not a date and time in the form {form}.',
    "type.time": '"{value}" is not a time of day (use hh:mm:ss).',
    "type.time.any": '"{value}" is not a time of day.',
    "type.time.pattern": '"{value}" is not a time of day in the form {form}.',
    "type.year": '"{value}" is not a year (use YYYY).',
    "type.yearmonth": '"{value}" is not a year and month (use YYYY-MM).',
    "type.duration": '"{value}" is not a duration (use ISO 8601, such as P1DT2H or PT30M).',
    "type.email": '"{value}" is not an e-mail address.',
    "type.uri": '"{value}" is not a URI (such as https://example.com/page).',
    "type.uuid": '"{value}" is not a UUID (such as 123e4567-e89b-12d3-a456-426614174000).',
    "type.binary": '"{value}" is not base64-encoded data.',
    "type.phone": '"{value}" is not a phone number (such as +44 20 7946 0958).',
    # constraint-error
    "enum": '"{value}" is not one of the allowed values: {allowed}.',
    "minimum": '"{value}" is less than the minimum allowed, {limit}.',
    "minimum.temporal": '"{value}" is earlier than the earliest allowed, {limit}.',
    "maximum": '"{value}" is more than the maximum allowed, {limit}.',
    "maximum.temporal": '"{value}" is later than the latest allowed, {limit}.',
    "minLength": '"{value}" has {length} characters; at least {limit} are required.',
    "maxLength": '"{value}" has {length} characters; at most {limit} are allowed.',
    "pattern": '"{value}" does not match the pattern {pattern}.',
    "unique": '"{value}" is already in row {first_row}: {label} must be unique.',
    "primaryKey": (
        "The key ({labels}) {values} is already in row {first_row}: each row's key must be unique."
    ),
    # row errors (no field): the row does not fit the header
    "extra-cell": (
        "Row {row} has {count} cells but the header has {width}; the cells after column "
        '{width} hold "{cells}". Check for an unquoted delimiter, or delete the row.'
    ),
    "missing-cell": (
        "Row {row} has {count} cell(s) but the header has {width}; the missing cells are "
        "read as empty. Check for a missing delimiter or a line break, or delete the row."
    ),
}

GERMAN: dict[str, str] = {
    "required": "{label} ist ein Pflichtfeld, aber diese Zelle ist leer.",
    "type.integer": "„{value}“ ist keine ganze Zahl.",
    "type.integer.decimal": "„{value}“ ist keine ganze Zahl (Dezimaltrennzeichen: {decimal!r}).",
    "type.integer.grouped": "„{value}“ ist keine ganze Zahl (Dezimaltrennzeichen: {decimal!r}, Tausendertrennzeichen: {group!r}).",
    "type.number": "„{value}“ ist keine Zahl.",
    "type.number.decimal": "„{value}“ ist keine Zahl (Dezimaltrennzeichen: {decimal!r}).",
    "type.number.grouped": "„{value}“ ist keine Zahl (Dezimaltrennzeichen: {decimal!r}, Tausendertrennzeichen: {group!r}).",
    "type.number.finite": "„{value}“ ist keine endliche Zahl.",
    "type.boolean": "„{value}“ ist keiner der Werte {allowed}.",
    "type.date": "„{value}“ ist kein Datum (Format JJJJ-MM-TT).",
    "type.date.any": "„{value}“ ist kein Datum.",
    "type.date.pattern": "„{value}“ ist kein Datum im Format {form}.",
    "type.datetime": "„{value}“ ist kein Datum mit Uhrzeit (Format JJJJ-MM-TTThh:mm:ss, optional mit Zeitzone).",
    "type.datetime.any": "„{value}“ ist kein Datum mit Uhrzeit.",
    "type.datetime.pattern": "„{value}“ ist kein Datum mit Uhrzeit im Format {form}.",
    "type.time": "„{value}“ ist keine Uhrzeit (Format hh:mm:ss).",
    "type.time.any": "„{value}“ ist keine Uhrzeit.",
    "type.time.pattern": "„{value}“ ist keine Uhrzeit im Format {form}.",
    "type.year": "„{value}“ ist kein Jahr (Format JJJJ).",
    "type.yearmonth": "„{value}“ ist kein Jahr mit Monat (Format JJJJ-MM).",
    "type.duration": "„{value}“ ist keine Dauer (ISO 8601, etwa P1DT2H oder PT30M).",
    "type.email": "„{value}“ ist keine E-Mail-Adresse.",
    "type.uri": "„{value}“ ist keine URI (etwa https://example.com/seite).",
    "type.uuid": "„{value}“ ist keine UUID (etwa 123e4567-e89b-12d3-a456-426614174000).",
    "type.binary": "„{value}“ sind keine Base64-kodierten Daten.",
    "type.phone": "„{value}“ ist keine Telefonnummer (etwa +44 20 7946 0958).",
    "enum": "„{value}“ ist keiner der erlaubten Werte: {allowed}.",
    "minimum": "„{value}“ ist kleiner als das erlaubte Minimum {limit}.",
    "minimum.temporal": "„{value}“ liegt vor dem frühesten erlaubten Wert {limit}.",
    "maximum": "„{value}“ ist größer als das erlaubte Maximum {limit}.",
    "maximum.temporal": "„{value}“ liegt nach dem spätesten erlaubten Wert {limit}.",
    "minLength": "„{value}“ hat {length} Zeichen; mindestens {limit} sind nötig.",
    "maxLength": "„{value}“ hat {length} Zeichen; höchstens {limit} sind erlaubt.",
    "pattern": "„{value}“ entspricht nicht dem Muster {pattern}.",
    "unique": "„{value}“ steht schon in Zeile {first_row}: {label} muss eindeutig sein.",
    "primaryKey": "Der Schlüssel ({labels}) {values} steht schon in Zeile {first_row}: Der Schlüssel jeder Zeile muss eindeutig sein.",
    "type.integer.range": "„{value}“ ist eine ganze Zahl außerhalb der 64 Bit, die loadbay speichert (-9223372036854775808 bis 9223372036854775807). Machen Sie das Feld zu einer Zahl oder zu Text, um sie zu behalten.",
    "extra-cell": "Zeile {row} hat {count} Zellen, die Kopfzeile aber {width}; die Zellen nach Spalte {width} enthalten „{cells}“. Prüfen Sie auf ein nicht in Anführungszeichen gesetztes Trennzeichen, oder löschen Sie die Zeile.",
    "missing-cell": "Zeile {row} hat {count} Zelle(n), die Kopfzeile aber {width}; die fehlenden Zellen werden als leer gelesen. Prüfen Sie auf ein fehlendes Trennzeichen oder einen Zeilenumbruch, oder löschen Sie die Zeile.",
}

FRENCH: dict[str, str] = {
    "required": "{label} est obligatoire, mais cette cellule est vide.",
    "type.integer": "« {value} » n’est pas un nombre entier.",
    "type.integer.decimal": "« {value} » n’est pas un nombre entier (séparateur décimal : {decimal!r}).",
    "type.integer.grouped": "« {value} » n’est pas un nombre entier (séparateur décimal : {decimal!r}, séparateur de milliers : {group!r}).",
    "type.number": "« {value} » n’est pas un nombre.",
    "type.number.decimal": "« {value} » n’est pas un nombre (séparateur décimal : {decimal!r}).",
    "type.number.grouped": "« {value} » n’est pas un nombre (séparateur décimal : {decimal!r}, séparateur de milliers : {group!r}).",
    "type.number.finite": "« {value} » n’est pas un nombre fini.",
    "type.boolean": "« {value} » ne fait pas partie de {allowed}.",
    "type.date": "« {value} » n’est pas une date (format AAAA-MM-JJ).",
    "type.date.any": "« {value} » n’est pas une date.",
    "type.date.pattern": "« {value} » n’est pas une date au format {form}.",
    "type.datetime": "« {value} » n’est pas une date et heure (format AAAA-MM-JJThh:mm:ss, fuseau horaire facultatif).",
    "type.datetime.any": "« {value} » n’est pas une date et heure.",
    "type.datetime.pattern": "« {value} » n’est pas une date et heure au format {form}.",
    "type.time": "« {value} » n’est pas une heure (format hh:mm:ss).",
    "type.time.any": "« {value} » n’est pas une heure.",
    "type.time.pattern": "« {value} » n’est pas une heure au format {form}.",
    "type.year": "« {value} » n’est pas une année (format AAAA).",
    "type.yearmonth": "« {value} » n’est pas une année et un mois (format AAAA-MM).",
    "type.duration": "« {value} » n’est pas une durée (ISO 8601, par exemple P1DT2H ou PT30M).",
    "type.email": "« {value} » n’est pas une adresse e-mail.",
    "type.uri": "« {value} » n’est pas une URI (par exemple https://example.com/page).",
    "type.uuid": "« {value} » n’est pas un UUID (par exemple 123e4567-e89b-12d3-a456-426614174000).",
    "type.binary": "« {value} » n’est pas une donnée encodée en base64.",
    "type.phone": "« {value} » n’est pas un numéro de téléphone (par exemple +44 20 7946 0958).",
    "enum": "« {value} » ne fait pas partie des valeurs autorisées : {allowed}.",
    "minimum": "« {value} » est inférieur au minimum autorisé, {limit}.",
    "minimum.temporal": "« {value} » est antérieur à la limite autorisée, {limit}.",
    "maximum": "« {value} » est supérieur au maximum autorisé, {limit}.",
    "maximum.temporal": "« {value} » est postérieur à la limite autorisée, {limit}.",
    "minLength": "« {value} » a {length} caractères ; il en faut au moins {limit}.",
    "maxLength": "« {value} » a {length} caractères ; {limit} au plus sont autorisés.",
    "pattern": "« {value} » ne correspond pas au motif {pattern}.",
    "unique": "« {value} » figure déjà à la ligne {first_row} : {label} doit être unique.",
    "primaryKey": "La clé ({labels}) {values} figure déjà à la ligne {first_row} : la clé de chaque ligne doit être unique.",
    "type.integer.range": "« {value} » est un nombre entier au-delà des 64 bits que loadbay conserve (-9223372036854775808 à 9223372036854775807). Faites du champ un nombre, ou du texte, pour le garder.",
    "extra-cell": "La ligne {row} a {count} cellules mais l’en-tête en a {width} ; les cellules après la colonne {width} contiennent « {cells} ». Cherchez un séparateur hors guillemets, ou supprimez la ligne.",
    "missing-cell": "La ligne {row} a {count} cellule(s) mais l’en-tête en a {width} ; les cellules manquantes sont lues comme vides. Cherchez un séparateur ou un saut de ligne manquant, ou supprimez la ligne.",
}

SPANISH: dict[str, str] = {
    "required": "{label} es obligatorio, pero esta celda está vacía.",
    "type.integer": "«{value}» no es un número entero.",
    "type.integer.decimal": "«{value}» no es un número entero (separador decimal: {decimal!r}).",
    "type.integer.grouped": "«{value}» no es un número entero (separador decimal: {decimal!r}, separador de miles: {group!r}).",
    "type.number": "«{value}» no es un número.",
    "type.number.decimal": "«{value}» no es un número (separador decimal: {decimal!r}).",
    "type.number.grouped": "«{value}» no es un número (separador decimal: {decimal!r}, separador de miles: {group!r}).",
    "type.number.finite": "«{value}» no es un número finito.",
    "type.boolean": "«{value}» no es ninguno de {allowed}.",
    "type.date": "«{value}» no es una fecha (use AAAA-MM-DD).",
    "type.date.any": "«{value}» no es una fecha.",
    "type.date.pattern": "«{value}» no es una fecha con el formato {form}.",
    "type.datetime": "«{value}» no es una fecha y hora (use AAAA-MM-DDThh:mm:ss, con zona horaria opcional).",
    "type.datetime.any": "«{value}» no es una fecha y hora.",
    "type.datetime.pattern": "«{value}» no es una fecha y hora con el formato {form}.",
    "type.time": "«{value}» no es una hora del día (use hh:mm:ss).",
    "type.time.any": "«{value}» no es una hora del día.",
    "type.time.pattern": "«{value}» no es una hora del día con el formato {form}.",
    "type.year": "«{value}» no es un año (use AAAA).",
    "type.yearmonth": "«{value}» no es un año y mes (use AAAA-MM).",
    "type.duration": "«{value}» no es una duración (ISO 8601, como P1DT2H o PT30M).",
    "type.email": "«{value}» no es una dirección de correo electrónico.",
    "type.uri": "«{value}» no es una URI (como https://example.com/pagina).",
    "type.uuid": "«{value}» no es un UUID (como 123e4567-e89b-12d3-a456-426614174000).",
    "type.binary": "«{value}» no son datos codificados en base64.",
    "type.phone": "«{value}» no es un número de teléfono (como +44 20 7946 0958).",
    "enum": "«{value}» no es uno de los valores permitidos: {allowed}.",
    "minimum": "«{value}» es menor que el mínimo permitido, {limit}.",
    "minimum.temporal": "«{value}» es anterior al primero permitido, {limit}.",
    "maximum": "«{value}» es mayor que el máximo permitido, {limit}.",
    "maximum.temporal": "«{value}» es posterior al último permitido, {limit}.",
    "minLength": "«{value}» tiene {length} caracteres; se necesitan al menos {limit}.",
    "maxLength": "«{value}» tiene {length} caracteres; se permiten como máximo {limit}.",
    "pattern": "«{value}» no coincide con el patrón {pattern}.",
    "unique": "«{value}» ya está en la fila {first_row}: {label} debe ser único.",
    "primaryKey": "La clave ({labels}) {values} ya está en la fila {first_row}: la clave de cada fila debe ser única.",
    "type.integer.range": "«{value}» es un número entero más allá de los 64 bits que guarda loadbay (-9223372036854775808 a 9223372036854775807). Haga que el campo sea un número, o texto, para conservarlo.",
    "extra-cell": "La fila {row} tiene {count} celdas pero el encabezado tiene {width}; las celdas después de la columna {width} contienen «{cells}». Compruebe si hay un separador sin comillas, o elimine la fila.",
    "missing-cell": "La fila {row} tiene {count} celda(s) pero el encabezado tiene {width}; las celdas que faltan se leen vacías. Compruebe si falta un separador o hay un salto de línea, o elimine la fila.",
}

JAPANESE: dict[str, str] = {
    "required": "{label} は必須ですが、このセルは空です。",
    "type.integer": "「{value}」は整数ではありません。",
    "type.integer.decimal": "「{value}」は整数ではありません（小数点は {decimal!r}）。",
    "type.integer.grouped": "「{value}」は整数ではありません（小数点は {decimal!r}、桁区切りは {group!r}）。",
    "type.number": "「{value}」は数値ではありません。",
    "type.number.decimal": "「{value}」は数値ではありません（小数点は {decimal!r}）。",
    "type.number.grouped": "「{value}」は数値ではありません（小数点は {decimal!r}、桁区切りは {group!r}）。",
    "type.number.finite": "「{value}」は有限の数値ではありません。",
    "type.boolean": "「{value}」は {allowed} のいずれでもありません。",
    "type.date": "「{value}」は日付ではありません（YYYY-MM-DD で入力してください）。",
    "type.date.any": "「{value}」は日付ではありません。",
    "type.date.pattern": "「{value}」は {form} 形式の日付ではありません。",
    "type.datetime": "「{value}」は日時ではありません（YYYY-MM-DDThh:mm:ss、タイムゾーンは任意）。",
    "type.datetime.any": "「{value}」は日時ではありません。",
    "type.datetime.pattern": "「{value}」は {form} 形式の日時ではありません。",
    "type.time": "「{value}」は時刻ではありません（hh:mm:ss で入力してください）。",
    "type.time.any": "「{value}」は時刻ではありません。",
    "type.time.pattern": "「{value}」は {form} 形式の時刻ではありません。",
    "type.year": "「{value}」は年ではありません（YYYY で入力してください）。",
    "type.yearmonth": "「{value}」は年月ではありません（YYYY-MM で入力してください）。",
    "type.duration": "「{value}」は期間ではありません（ISO 8601、例: P1DT2H、PT30M）。",
    "type.email": "「{value}」はメールアドレスではありません。",
    "type.uri": "「{value}」は URI ではありません（例: https://example.com/page）。",
    "type.uuid": "「{value}」は UUID ではありません（例: 123e4567-e89b-12d3-a456-426614174000）。",
    "type.binary": "「{value}」は Base64 でエンコードされたデータではありません。",
    "type.phone": "「{value}」は電話番号ではありません（例: +44 20 7946 0958）。",
    "enum": "「{value}」は使える値ではありません: {allowed}",
    "minimum": "「{value}」は最小値 {limit} より小さい値です。",
    "minimum.temporal": "「{value}」は最も早い許容値 {limit} より前です。",
    "maximum": "「{value}」は最大値 {limit} より大きい値です。",
    "maximum.temporal": "「{value}」は最も遅い許容値 {limit} より後です。",
    "minLength": "「{value}」は {length} 文字です。{limit} 文字以上必要です。",
    "maxLength": "「{value}」は {length} 文字です。{limit} 文字までです。",
    "pattern": "「{value}」はパターン {pattern} に一致しません。",
    "unique": "「{value}」は {first_row} 行目にもあります。{label} は重複できません。",
    "primaryKey": "キー（{labels}）{values} は {first_row} 行目にもあります。各行のキーは重複できません。",
    "type.integer.range": "「{value}」は loadbay が保持できる 64 ビット（-9223372036854775808 ～ 9223372036854775807）を超える整数です。値を保つには、項目を数値またはテキストにしてください。",
    "extra-cell": "{row} 行目のセルは {count} 個ですが、見出し行は {width} 個です。{width} 列目より後のセルには「{cells}」があります。引用符で囲まれていない区切り文字がないか確認するか、行を削除してください。",
    "missing-cell": "{row} 行目のセルは {count} 個ですが、見出し行は {width} 個です。足りないセルは空として読み込まれます。区切り文字の欠落や改行がないか確認するか、行を削除してください。",
}

CATALOGUE: dict[str, dict[str, str]] = {
    "en": ENGLISH,
    "de": GERMAN,
    "fr": FRENCH,
    "es": SPANISH,
    "ja": JAPANESE,
}
"""Language -> key -> message template."""


_spoken = [DEFAULT_LANGUAGE]  # the language the page speaks (bridge.set_language)


def use_language(language: str) -> str:
    """Render messages in `language` from now on (English if there is no such table);
    returns the language used."""
    _spoken[0] = language if language in CATALOGUE else DEFAULT_LANGUAGE
    return _spoken[0]


def render(key: str, params: Mapping[str, object], language: str | None = None) -> str:
    """The message for `key` with its parameters, in `language` (by default the page's;
    English if there is none)."""
    table = CATALOGUE.get(language or _spoken[0], ENGLISH)
    return table.get(key, ENGLISH[key]).format_map(params)
