// The SDK's own words in each language people are answered in (en, ru, uz:
// policy.Languages). Purpose names and descriptions come from the policy
// bundle through the banner endpoint, already in the visitor's language.

export interface Strings {
  title: string;
  text: string;
  reconsent: string;
  notice: string;
  accept: string;
  reject: string;
  prefs: string;
  save: string;
  close: string;
  prefsTitle: string;
  prefsText: string;
  always: string;
  explicit: string;
  /** GPC honoured here; {list} is the purposes it refuses. */
  gpcOn: string;
  /** GPC sent, in a regime that does not act on it (everything optional is off anyway). */
  gpcSeen: string;
}

const en: Strings = {
  title: "Your privacy choices",
  text: "We use cookies and similar technologies. Strictly necessary ones are always on; you choose the others, and you can change your mind at any time.",
  reconsent: "Our privacy notice has changed: please review your choices.",
  notice: "Privacy notice",
  accept: "Accept all",
  reject: "Reject all",
  prefs: "Preferences",
  save: "Save choices",
  close: "Close",
  prefsTitle: "Privacy preferences",
  prefsText: "Choose what you allow. Each choice is recorded with a receipt, and you can change it at any time.",
  always: "(always on)",
  explicit: "Only if you switch it on here.",
  gpcOn: "Your browser sends a Global Privacy Control signal. We honour it as an opt-out of: {list}.",
  gpcSeen: "Your browser sends a Global Privacy Control signal: optional purposes stay off unless you switch them on.",
};

const ru: Strings = {
  title: "Ваша конфиденциальность",
  text: "Мы используем cookie и похожие технологии. Строго необходимые включены всегда; остальные — на ваш выбор, и его можно изменить в любой момент.",
  reconsent: "Наше уведомление о конфиденциальности изменилось: пожалуйста, проверьте свой выбор.",
  notice: "Уведомление о конфиденциальности",
  accept: "Принять все",
  reject: "Отклонить все",
  prefs: "Настроить",
  save: "Сохранить выбор",
  close: "Закрыть",
  prefsTitle: "Настройки конфиденциальности",
  prefsText: "Выберите, что вы разрешаете. Каждый выбор записывается с квитанцией, и его можно изменить в любой момент.",
  always: "(всегда включены)",
  explicit: "Только если вы включите это здесь.",
  gpcOn: "Ваш браузер передаёт сигнал Global Privacy Control. Мы соблюдаем его как отказ от: {list}.",
  gpcSeen: "Ваш браузер передаёт сигнал Global Privacy Control: необязательные цели остаются выключенными, пока вы их не включите.",
};

const uz: Strings = {
  title: "Maxfiyligingiz",
  text: "Biz cookie fayllari va shunga oʻxshash texnologiyalardan foydalanamiz. Zarurlari doim yoqilgan; qolganlarini siz tanlaysiz va fikringizni istalgan vaqtda oʻzgartira olasiz.",
  reconsent: "Maxfiylik bildirishnomamiz oʻzgardi: iltimos, tanlovingizni qayta koʻrib chiqing.",
  notice: "Maxfiylik bildirishnomasi",
  accept: "Hammasini qabul qilish",
  reject: "Hammasini rad etish",
  prefs: "Sozlash",
  save: "Tanlovni saqlash",
  close: "Yopish",
  prefsTitle: "Maxfiylik sozlamalari",
  prefsText: "Nimaga ruxsat berishingizni tanlang. Har bir tanlov kvitansiya bilan yoziladi va uni istalgan vaqtda oʻzgartirish mumkin.",
  always: "(doim yoqilgan)",
  explicit: "Faqat shu yerda oʻzingiz yoqsangiz.",
  gpcOn: "Brauzeringiz Global Privacy Control signalini yuboradi. Biz uni quyidagilardan voz kechish sifatida hurmat qilamiz: {list}.",
  gpcSeen: "Brauzeringiz Global Privacy Control signalini yuboradi: ixtiyoriy maqsadlar siz yoqmaguningizcha oʻchiq qoladi.",
};

const all: Record<string, Strings> = { en, ru, uz };

/** The supported language a tag such as "ru-RU" or "uz-Latn-UZ" falls to; English otherwise. */
export function pickLang(tag: string | null | undefined): string {
  const primary = (tag || "").toLowerCase().split(/[-_]/)[0];
  return all[primary] ? primary : "en";
}

export function words(lang: string): Strings {
  return all[lang] || en;
}
