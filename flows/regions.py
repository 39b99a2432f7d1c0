"""Canada's 13 provinces and territories: two-letter codes and the names people type."""

from __future__ import annotations

from flows.keywords import loosen
from flows.words import fold_name

#: code -> names in English, French, Spanish (Tagalog and Vietnamese speakers write the English
#: or French names), then Punjabi, Hindi, Chinese (simplified, traditional, the names Canadian
#: Chinese media use), Arabic, Ukrainian (and the Russian forms many Ukrainians type), and
#: common short forms. Accents, case, hyphens and dots are ignored when matching.
PROVINCES: dict[str, tuple[str, ...]] = {
    "AB": ("Alberta",
           "ਅਲਬਰਟਾ", "ਐਲਬਰਟਾ", "अल्बर्टा", "एल्बर्टा", "阿尔伯塔", "阿爾伯塔", "亚伯达", "亞伯達",
           "艾伯塔", "ألبرتا", "ألبيرتا", "Альберта"),
    "BC": ("British Columbia", "Colombie-Britannique", "Columbia Británica",
           "Colombia Británica", "B.C.",
           "ਬ੍ਰਿਟਿਸ਼ ਕੋਲੰਬੀਆ", "ਬੀ ਸੀ", "ਬੀਸੀ", "ब्रिटिश कोलंबिया", "ब्रिटिश कोलम्बिया", "बी सी",
           "बीसी", "不列颠哥伦比亚", "不列顛哥倫比亞", "卑诗", "卑詩", "卑诗省", "卑詩省", "BC省",
           "كولومبيا البريطانية", "بريتش كولومبيا", "Британська Колумбія",
           "Британская Колумбия"),
    "MB": ("Manitoba",
           "ਮੈਨੀਟੋਬਾ", "मैनिटोबा", "मनिटोबा", "马尼托巴", "馬尼托巴", "曼尼托巴", "缅尼托巴",
           "緬尼托巴", "مانيتوبا", "Манітоба", "Манитоба"),
    "NB": ("New Brunswick", "Nouveau-Brunswick", "Nuevo Brunswick",
           "ਨਿਊ ਬਰੰਜ਼ਵਿਕ", "ਨਿਊ ਬਰੰਸਵਿਕ", "न्यू ब्रंसविक", "न्यू ब्रन्सविक", "新不伦瑞克",
           "新不倫瑞克", "纽宾士域", "紐賓士域", "نيو برونزويك", "نيوبرونزويك", "Нью-Брансвік",
           "Нью-Брансуик"),
    "NL": ("Newfoundland and Labrador", "Newfoundland", "Labrador", "Terre-Neuve-et-Labrador",
           "Terre-Neuve", "Terranova y Labrador", "Terranova", "Newfoundland và Labrador",
           "ਨਿਊਫਾਊਂਡਲੈਂਡ ਅਤੇ ਲੈਬਰਾਡੋਰ", "ਨਿਊਫਾਊਂਡਲੈਂਡ", "न्यूफ़ाउंडलैंड और लैब्राडोर",
           "न्यूफ़ाउंडलैंड", "纽芬兰与拉布拉多", "紐芬蘭與拉布拉多", "纽芬兰",
           "紐芬蘭", "نيوفاوندلاند ولابرادور", "نيوفاوندلاند", "Ньюфаундленд і Лабрадор",
           "Ньюфаундленд"),
    "NS": ("Nova Scotia", "Nouvelle-Écosse", "Nueva Escocia",
           "ਨੋਵਾ ਸਕੋਸ਼ੀਆ", "ਨੋਵਾ ਸਕੋਟੀਆ", "नोवा स्कोशिया", "नोवा स्कोटिया", "新斯科舍",
           "新斯科細亞", "新斯科细亚", "诺华斯高沙", "諾華斯高沙", "نوفا سكوشا", "نوفا سكوتيا",
           "Нова Шотландія", "Новая Шотландия"),
    "ON": ("Ontario", "Ontário",
           "ਓਨਟਾਰੀਓ", "ਓਂਟਾਰੀਓ", "ਉਨਟਾਰੀਓ", "ओंटारियो", "ओन्टारियो", "ऑन्टारियो", "ओंटेरियो",
           "安大略", "安大略省", "安省", "أونتاريو", "Онтаріо", "Онтарио"),
    "PE": ("Prince Edward Island", "PEI", "P.E.I.", "Île-du-Prince-Édouard", "IPE",
           "Isla del Príncipe Eduardo", "Isla Principe Eduardo", "Đảo Hoàng tử Edward",
           "Dao Hoang tu Edward",
           "ਪ੍ਰਿੰਸ ਐਡਵਰਡ ਆਈਲੈਂਡ", "प्रिंस एडवर्ड आइलैंड", "प्रिंस एडवर्ड द्वीप", "爱德华王子岛",
           "愛德華王子島", "جزيرة الأمير إدوارد", "Острів Принца Едварда",
           "Остров Принца Эдуарда"),
    "QC": ("Quebec", "Québec", "PQ", "Quebék",
           "ਕਿਊਬੈਕ", "ਕਿਊਬਿਕ", "क्यूबेक", "क्युबेक", "魁北克", "魁北克省", "魁省", "كيبك", "كيبيك",
           "Квебек"),
    "SK": ("Saskatchewan",
           "ਸਸਕੈਚਵਨ", "ਸਸਕੈਚਵਾਨ", "सस्केचेवान", "सस्काचेवान", "萨斯喀彻温", "薩斯喀徹溫",
           "沙斯卡寸", "沙省", "ساسكاتشوان", "ساسكتشوان", "Саскачеван"),
    "NT": ("Northwest Territories", "Territoires du Nord-Ouest", "Territorios del Noroeste",
           "NWT", "TNO", "Lãnh thổ Tây Bắc",
           "ਨਾਰਥਵੈਸਟ ਟੈਰੀਟਰੀਜ਼", "ਉੱਤਰ-ਪੱਛਮੀ ਪ੍ਰਦੇਸ਼", "नॉर्थवेस्ट टेरिटरीज़", "उत्तर-पश्चिमी क्षेत्र",
           "西北地区", "西北地區", "西北领地", "西北領地", "الأقاليم الشمالية الغربية",
           "Північно-Західні території", "Северо-Западные территории"),
    "NU": ("Nunavut",
           "ਨੂਨਾਵੁਤ", "ਨੁਨਾਵੁਤ", "नुनावुत", "नूनावुत", "努纳武特", "努納武特", "努纳武", "نونافوت",
           "Нунавут"),
    "YT": ("Yukon", "Yukón", "YK",
           "ਯੂਕੋਨ", "ਯੁਕੋਨ", "युकोन", "यूकॉन", "यूकोन", "育空", "育空地区", "育空地區", "يوكون",
           "Юкон"),
}

_INDEX: dict[str, str] = {
    **{loosen(fold_name(name)): code for code, names in PROVINCES.items() for name in names},
    **{code.lower(): code for code in PROVINCES},
}

#: The catalog entry with a language's own province names: `ON = Ontário | QC = Quebeque`.
NAMES_ENTRY = "words_provinces"


def add_names(catalog: dict[str, str]) -> list[str]:
    """Take a catalog's province names (`words_provinces`) in; returns what it could not
    take (an unknown code, a pair without `=`, a name another province has)."""
    bad = []
    for pair in (p.strip() for p in catalog.get(NAMES_ENTRY, "").split("|")):
        code, sep, name = (part.strip() for part in pair.partition("="))
        if not pair:
            continue
        if not sep or code.upper() not in PROVINCES or not name:
            bad.append(pair)
            continue
        key = loosen(fold_name(name))
        if _INDEX.setdefault(key, code.upper()) != code.upper():
            bad.append(f"{pair} (already {_INDEX[key]})")
    return bad


def parse_region(text: str) -> str | None:
    """`on`, `Ontario`, `Ontário`, `安大略`, `أونتاريو` -> the two-letter code, else None."""
    return _INDEX.get(loosen(fold_name(text)))
