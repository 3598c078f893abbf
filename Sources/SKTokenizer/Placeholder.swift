public enum SKTokenizerPlaceholder {}
