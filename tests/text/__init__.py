#: the API key the fake Gemini server accepts in these tests
KEY = "text-test-key"
